SET LOCAL lock_timeout = '200ms';
ALTER TABLE tasks
    DROP COLUMN child_count,
    DROP COLUMN position,
    DROP COLUMN parent_id,
    DROP COLUMN list_id;
