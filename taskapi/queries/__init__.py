"""Every SQL statement of the service, as named constants, and the small functions that run them, by resource.

Values are always bound parameters; every statement on `tasks` (and `tombstones`) has `user_id` in its WHERE
clause. Handlers import this package and call its functions; the statements never leave it.
"""

from taskapi.queries.changes import DELETED_LIST, DELETED_TASK, LIST, TASK, fetch_changes, purge_tombstones
from taskapi.queries.keys import (
    NO_USER_SCOPE,
    claim_key,
    fetch_key,
    fetch_signing_key,
    purge_expired_keys,
    store_answer,
    trim_keys,
)
from taskapi.queries.labels import fetch_labels
from taskapi.queries.lists import (
    delete_list,
    fetch_list,
    fetch_list_version,
    fetch_lists,
    insert_list,
    move_list,
    rename_list,
)
from taskapi.queries.order import LAST
from taskapi.queries.pages import SORTS, Page, list_tasks
from taskapi.queries.tasks import (
    Created,
    append_task,
    delete_task,
    fetch_task,
    fetch_task_version,
    fetch_unkeyed_tasks,
    insert_task,
    store_search_columns,
    update_task,
)
from taskapi.queries.tree import appends, move_task, place_new_task, remove_task, write_task
from taskapi.queries.users import (
    delete_user,
    fetch_user,
    fetch_zone,
    insert_user,
    lock_user_zone,
    set_zone,
    user_exists,
)

__all__ = [
    "DELETED_LIST",
    "DELETED_TASK",
    "LIST",
    "TASK",
    "write_task",
    "remove_task",
    "appends",
    "append_task",
    "place_new_task",
    "move_task",
    "rename_list",
    "move_list",
    "insert_list",
    "fetch_lists",
    "fetch_list_version",
    "fetch_list",
    "delete_list",
    "LAST",
    "NO_USER_SCOPE",
    "SORTS",
    "Created",
    "Page",
    "claim_key",
    "delete_task",
    "delete_user",
    "fetch_changes",
    "fetch_key",
    "fetch_labels",
    "fetch_signing_key",
    "fetch_task",
    "fetch_task_version",
    "fetch_unkeyed_tasks",
    "fetch_user",
    "fetch_zone",
    "insert_task",
    "insert_user",
    "lock_user_zone",
    "list_tasks",
    "purge_expired_keys",
    "purge_tombstones",
    "set_zone",
    "store_answer",
    "store_search_columns",
    "trim_keys",
    "update_task",
    "user_exists",
]
