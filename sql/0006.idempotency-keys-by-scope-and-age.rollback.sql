-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS idempotency_keys_scope_created_idx;
