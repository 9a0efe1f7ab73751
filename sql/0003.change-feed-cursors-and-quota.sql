-- depends: 0002.task-versions-and-idempotency-keys
-- The change feed: every write on a user's tasks takes the next number of that user's change counter in the
-- writing statement. The counter lives on the user's row, whose lock orders the writers, so the numbers a reader
-- can see always form an unbroken prefix: a sync token (a number) never skips a write that commits late.
ALTER TABLE users ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
-- How many tasks the user holds, kept by the same statements, so the quota check needs no count.
ALTER TABLE users ADD COLUMN task_count bigint NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;

-- Existing tasks get their user's numbers 1..n in the order they last changed.
UPDATE tasks SET change_seq = numbered.n
FROM (SELECT user_id, id, row_number() OVER (PARTITION BY user_id ORDER BY updated_at, id) AS n FROM tasks) AS numbered
WHERE tasks.user_id = numbered.user_id AND tasks.id = numbered.id;

UPDATE users SET change_seq = totals.n, task_count = totals.n
FROM (SELECT user_id, count(*) AS n FROM tasks GROUP BY user_id) AS totals
WHERE users.id = totals.user_id;

CREATE INDEX tasks_user_change_idx ON tasks (user_id, change_seq);

-- A deleted task, remembered for TOMBSTONE_RETENTION_DAYS so clients that synced before learn of it.
CREATE TABLE tombstones (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    change_seq bigint NOT NULL,
    task_id uuid NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, change_seq)
);
CREATE INDEX tombstones_deleted_idx ON tombstones (deleted_at);

-- Keyset paging for every sort the list offers (created_at has its index since 0001; a backward scan of an
-- index serves the opposite direction).
CREATE INDEX tasks_user_updated_idx ON tasks (user_id, updated_at DESC, id DESC);
CREATE INDEX tasks_user_title_idx ON tasks (user_id, title, id);

-- Secrets every worker and host of the service must share: the key that signs list cursors and sync tokens.
-- 32 bytes from two random UUIDs (gen_random_uuid() draws from PostgreSQL's strong random source).
CREATE TABLE service_secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL
);
INSERT INTO service_secrets (name, value)
VALUES ('token_signing_key', uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
