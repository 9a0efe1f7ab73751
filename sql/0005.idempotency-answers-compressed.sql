-- depends: 0004.user-tombstone-bounds
-- Stored idempotency answers are kept compressed from now on; the rows stored before say they are not.
-- Online: each migration of round 3 takes ACCESS EXCLUSIVE on one busy table only (the app's statements lock
-- users, tasks and idempotency_keys in different orders, so a migration holding two could deadlock with them);
-- constant defaults add no table rewrite; a short lock_timeout gives up (taskapi.migrate retries) rather than
-- queue every request behind a migration that waits for a long transaction.
SET LOCAL lock_timeout = '200ms';
ALTER TABLE idempotency_keys ADD COLUMN compressed boolean NOT NULL DEFAULT false;
