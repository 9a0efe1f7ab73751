-- depends: 0003.change-feed-cursors-and-quota
-- What one user may store: tombstones collapse oldest first beyond TOMBSTONES_PER_USER_MAX (the count is kept on
-- the user's row by the statements that write tombstones, under its lock); tombstone_floor is the newest change
-- number whose tombstone was collapsed, so a sync token from before it is told to start over (410). Stored
-- idempotency answers are kept compressed from now on.
-- Online: constant defaults add no table rewrite; a short lock_timeout makes the migration give up (and be
-- retried) rather than queue every request behind it while a long transaction holds the tables.
SET LOCAL lock_timeout = '1s';
ALTER TABLE users ADD COLUMN tombstone_count bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN tombstone_floor bigint NOT NULL DEFAULT 0;
UPDATE users SET tombstone_count = counted.n
FROM (SELECT user_id, count(*) AS n FROM tombstones GROUP BY user_id) AS counted
WHERE users.id = counted.user_id;
ALTER TABLE idempotency_keys ADD COLUMN compressed boolean NOT NULL DEFAULT false;

-- The bytes a task's title and description take in its JSON (escapes included), kept by every write: a page or a
-- change-feed answer is cut at its byte bound before any JSON is made. NULL on rows written before this migration
-- (no backfill: no rewrite of a live table); readers then fall back to the stored length.
ALTER TABLE tasks ADD COLUMN text_bytes integer;
CREATE FUNCTION tasks_text_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.text_bytes := octet_length(to_json(NEW.title)::text) + coalesce(octet_length(to_json(NEW.description)::text), 4);
    RETURN NEW;
END
$$;
CREATE TRIGGER tasks_text_bytes BEFORE INSERT OR UPDATE OF title, description ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_text_bytes();
