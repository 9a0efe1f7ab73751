-- depends: 0007.task-text-bytes
-- A user's time zone: what today and an all-day due mean for them.
-- Online: each migration of round 3 takes ACCESS EXCLUSIVE on one busy table only (the app's statements lock
-- users, tasks and idempotency_keys in different orders, so a migration holding two could deadlock with them);
-- constant defaults add no table rewrite; a short lock_timeout gives up (taskapi.migrate retries) rather than
-- queue every request behind a migration that waits for a long transaction.
SET LOCAL lock_timeout = '200ms';
ALTER TABLE users ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
