SET LOCAL lock_timeout = '1s';
DROP TRIGGER tasks_text_bytes ON tasks;
DROP FUNCTION tasks_text_bytes();
ALTER TABLE tasks DROP COLUMN text_bytes;
ALTER TABLE idempotency_keys DROP COLUMN compressed;
ALTER TABLE users DROP COLUMN tombstone_floor;
ALTER TABLE users DROP COLUMN tombstone_count;
