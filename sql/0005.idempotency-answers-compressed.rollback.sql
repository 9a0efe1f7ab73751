SET LOCAL lock_timeout = '200ms';
ALTER TABLE idempotency_keys DROP COLUMN compressed;
