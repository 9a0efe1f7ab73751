-- depends: 0012.task-order
-- A deleted list leaves a tombstone too (its id in task_id, the column's name from round 2), told apart by is_list.
-- Online: a constant default (no rewrite); tombstones is the one table locked (see 0004).
SET LOCAL lock_timeout = '200ms';
ALTER TABLE tombstones ADD COLUMN is_list boolean NOT NULL DEFAULT false;
