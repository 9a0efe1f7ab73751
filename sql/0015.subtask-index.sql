-- depends: 0014.task-order-indexes
-- transactional: false
-- A task's children, one parent at a time (the subtree of a move, a delete or a completion). Partial: only subtasks
-- are in it, and its statistics are theirs, so the planner looks children up here instead of reading all of the
-- user's tasks (it estimates the group index's coalesce(parent_id, nil) = x as matching every top-level task).
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_parent_idx;
CREATE INDEX CONCURRENTLY tasks_user_parent_idx ON tasks (user_id, parent_id) WHERE parent_id IS NOT NULL;
