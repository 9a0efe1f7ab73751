SET LOCAL lock_timeout = '200ms';
DROP TABLE lists;
ALTER TABLE users DROP COLUMN list_count;
