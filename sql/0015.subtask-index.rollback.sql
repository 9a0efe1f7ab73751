-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_parent_idx;
