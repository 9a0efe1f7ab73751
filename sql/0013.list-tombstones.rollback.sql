SET LOCAL lock_timeout = '200ms';
DELETE FROM tombstones WHERE is_list;
ALTER TABLE tombstones DROP COLUMN is_list;
