-- depends: 0009.task-model
-- transactional: false
-- The indexes of the round-3 filters and sorts, each leading with user_id, built CONCURRENTLY (reads and writes go
-- on; this cannot run in a transaction), then the CHECKs of 0009 validated (SHARE UPDATE EXCLUSIVE: writes go on).
-- Each DROP ... IF EXISTS first makes a retry after a failed build (which leaves an INVALID index) start clean.
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_idx;
-- sort=due: the instant, tasks without a due last (the far future)...
CREATE INDEX CONCURRENTLY tasks_user_due_idx
    ON tasks (user_id, coalesce(due_sort, '9999-01-01 00:00:00+00'::timestamptz), id);
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_desc_idx;
-- ...and sort=-due, read backwards: tasks without a due last again (the far past).
CREATE INDEX CONCURRENTLY tasks_user_due_desc_idx
    ON tasks (user_id, coalesce(due_sort, '0002-01-01 00:00:00+00'::timestamptz), id);
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_date_idx;
-- due_from / due_to on all-day dues (their date is the same in every zone).
CREATE INDEX CONCURRENTLY tasks_user_due_date_idx ON tasks (user_id, due_date) WHERE due_time IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_at_idx;
-- due_from / due_to on timed dues (overdue reads tasks_user_due_idx).
CREATE INDEX CONCURRENTLY tasks_user_due_at_idx ON tasks (user_id, due_at) WHERE due_at IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_priority_idx;
CREATE INDEX CONCURRENTLY tasks_user_priority_idx ON tasks (user_id, priority, id);
DROP INDEX CONCURRENTLY IF EXISTS tasks_lookup_keys_idx;
-- q and label: the keys are hashed with the user's id, so a lookup finds that user's candidates only.
-- fastupdate off: no pending list, whose merges made creates stall (p99 289 against 138 ms in the shared bench,
-- create 372 against 425 req/s, update 504 against 900) and made the planner shy of the index after a burst.
CREATE INDEX CONCURRENTLY tasks_lookup_keys_idx ON tasks USING gin ((title_keys || description_keys || label_hashes))
    WITH (fastupdate = off);
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_unkeyed_idx;
-- Rows not yet given all their lookup keys (written before 0009), which `q` reads beside the keys' candidates.
CREATE INDEX CONCURRENTLY tasks_user_unkeyed_idx ON tasks (user_id)
    WHERE title_keys IS NULL OR description_keys IS NULL;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_priority_range;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_due_shape;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_labels_shape;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_completed_at_only_when_completed;
