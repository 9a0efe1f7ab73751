SET LOCAL lock_timeout = '200ms';
ALTER TABLE users DROP COLUMN time_zone;
