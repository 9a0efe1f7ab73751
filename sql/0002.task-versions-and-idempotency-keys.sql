-- depends: 0001.create-users-and-tasks
-- A task's version: 1 when created, one more on every PUT or PATCH; its ETag and the If-Match check.
-- A constant default: existing rows get version 1 without a table rewrite (PostgreSQL 11+).
ALTER TABLE tasks ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD CONSTRAINT tasks_version_positive CHECK (version > 0);

-- The answer to a POST sent with an Idempotency-Key, stored in the transaction that made what it answers.
-- scope: the user whose resource was created (the path's user, or the caller registering under jwt); under
-- AUTH_MODE=none a POST /users has no user yet, and its keys share the nil UUID.
CREATE TABLE idempotency_keys (
    scope uuid NOT NULL,
    key varchar(255) NOT NULL,
    fingerprint bytea NOT NULL,
    status smallint,
    body bytea,
    location text,
    etag text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Serves the purge of expired keys, oldest first.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
