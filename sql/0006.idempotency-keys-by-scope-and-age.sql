-- depends: 0005.idempotency-answers-compressed
-- transactional: false
-- Serves the per-user bound on stored idempotency answers (the newest IDEMPOTENCY_KEYS_PER_USER_MAX of a scope are
-- kept). Built CONCURRENTLY, which cannot run in a transaction: reads and writes go on meanwhile. A build that
-- failed leaves an INVALID index: the DROP makes a retry of this migration start clean.
DROP INDEX CONCURRENTLY IF EXISTS idempotency_keys_scope_created_idx;
CREATE INDEX CONCURRENTLY idempotency_keys_scope_created_idx ON idempotency_keys (scope, created_at DESC);
