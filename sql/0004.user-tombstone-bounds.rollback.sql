SET LOCAL lock_timeout = '200ms';
ALTER TABLE users DROP COLUMN tombstone_floor;
ALTER TABLE users DROP COLUMN tombstone_count;
