SET LOCAL lock_timeout = '200ms';
DROP FUNCTION position_after(text);
ALTER TABLE users DROP COLUMN task_tail;
