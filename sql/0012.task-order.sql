-- depends: 0011.lists
-- Where a task is: its list and parent (NULL: none), its position among its siblings (the tasks of the same list
-- and parent; a key compared as bytes, COLLATE "C"), and how many children it has (kept by every write that adds
-- or takes a child, on the parent's row: a write that must know whether a task has children re-reads it under the
-- row's lock, and the 1,000-children bound is exact). No foreign keys: every writer checks the ids it is given
-- under the user's row lock, which every writer of the user's lists and tasks takes first.
-- Tasks from before this migration are top-level tasks in no list, all at position '' (ties broken by id): the
-- first move or create that needs a key between two of them renumbers their sibling group.
-- Online: nullable columns and constant defaults (no rewrite); tasks is the one table locked (see 0004).
SET LOCAL lock_timeout = '200ms';
ALTER TABLE tasks
    ADD COLUMN list_id uuid,
    ADD COLUMN parent_id uuid,
    ADD COLUMN position text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN child_count integer NOT NULL DEFAULT 0;
