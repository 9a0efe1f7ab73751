SET LOCAL lock_timeout = '200ms';
DROP TRIGGER tasks_text_bytes ON tasks;
DROP FUNCTION tasks_text_bytes();
ALTER TABLE tasks DROP COLUMN text_bytes;
