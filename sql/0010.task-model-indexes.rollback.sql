-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_unkeyed_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_lookup_keys_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_priority_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_date_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_desc_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_idx;
