-- depends: 0003.change-feed-cursors-and-quota
-- What one user may keep of deletions: tombstones collapse oldest first beyond TOMBSTONES_PER_USER_MAX (the count
-- is kept on the user's row by the statements that write tombstones, under its lock); tombstone_floor is the
-- newest change number whose tombstone was collapsed, so a sync token from before it is told to start over (410).
-- Online: each migration of round 3 takes ACCESS EXCLUSIVE on one busy table only (the app's statements lock
-- users, tasks and idempotency_keys in different orders, so a migration holding two could deadlock with them);
-- constant defaults add no table rewrite; a short lock_timeout gives up (taskapi.migrate retries) rather than
-- queue every request behind a migration that waits for a long transaction.
SET LOCAL lock_timeout = '200ms';
ALTER TABLE users ADD COLUMN tombstone_count bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN tombstone_floor bigint NOT NULL DEFAULT 0;
UPDATE users SET tombstone_count = counted.n
FROM (SELECT user_id, count(*) AS n FROM tombstones GROUP BY user_id) AS counted
WHERE users.id = counted.user_id;
