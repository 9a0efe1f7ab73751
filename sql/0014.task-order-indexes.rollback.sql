-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_list_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_group_idx;
