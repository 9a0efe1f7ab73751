SET LOCAL lock_timeout = '1s';
ALTER TABLE idempotency_keys DROP COLUMN compressed;
ALTER TABLE users DROP COLUMN tombstone_floor;
ALTER TABLE users DROP COLUMN tombstone_count;
