DROP TABLE service_secrets;
DROP INDEX tasks_user_title_idx;
DROP INDEX tasks_user_updated_idx;
DROP TABLE tombstones;
DROP INDEX tasks_user_change_idx;
ALTER TABLE tasks DROP COLUMN change_seq;
ALTER TABLE users DROP COLUMN task_count;
ALTER TABLE users DROP COLUMN change_seq;
