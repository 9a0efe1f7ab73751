-- depends: 0013.list-tombstones
-- transactional: false
-- The indexes of sibling groups, built CONCURRENTLY (reads and writes go on). A group is keyed by parent and list
-- with NULL read as the nil UUID, so that "top level" and "in no list" are equalities: the planner then reads a
-- group's tasks in position order from the index, with no sort (it cannot for IS NULL). The same expressions are
-- in taskapi/queries/order.py.
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_group_idx;
-- A sibling group in manual order (sort=position with parent_id and list_id), a task's children (cascades, moves).
CREATE INDEX CONCURRENTLY tasks_user_group_idx ON tasks (
    user_id, coalesce(parent_id, '00000000-0000-0000-0000-000000000000'::uuid),
    coalesce(list_id, '00000000-0000-0000-0000-000000000000'::uuid), position, id);
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_list_idx;
-- list_id alone (a list's tasks at every level; deleting a list).
CREATE INDEX CONCURRENTLY tasks_user_list_idx ON tasks (
    user_id, coalesce(list_id, '00000000-0000-0000-0000-000000000000'::uuid), position, id);
