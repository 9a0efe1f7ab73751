"""A Python client generated from the served document by openapi-python-client, driven through a full round trip
against the real gunicorn under AUTH_MODE=jwt: the document stays usable as round 2 adds headers, parameters and
authentication."""

import importlib
import os
import subprocess
import sys
import uuid

import pytest
from conftest import running_gunicorn
from helpers import ROOT, SECRET, http, token


@pytest.fixture(scope="module")
def generated(database_url, tmp_path_factory):
    """(the generated package, the served base URL)."""
    tmp = tmp_path_factory.mktemp("client")
    with running_gunicorn(database_url, tmp / "gunicorn.log", AUTH_MODE="jwt", JWT_SECRET=SECRET) as server:
        status, _, document = http("GET", server["url"] + "/openapi.json")
        assert status == 200
        (tmp / "openapi.json").write_text(__import__("json").dumps(document))
        bin_dir = os.path.dirname(sys.executable)
        result = subprocess.run(
            [os.path.join(bin_dir, "openapi-python-client"), "generate", "--path", str(tmp / "openapi.json")]
            + ["--meta", "none", "--output-path", str(tmp / "taskapi_client")],
            cwd=ROOT,
            env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},  # its ruff post-hook
            capture_output=True,
            text=True,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0 and "warning" not in output.lower(), output
        sys.path.insert(0, str(tmp))
        try:
            yield importlib.import_module("taskapi_client"), server["url"]
        finally:
            sys.path.remove(str(tmp))


def test_a_generated_client_does_a_full_round_trip(generated):
    package, base = generated
    from taskapi_client import AuthenticatedClient
    from taskapi_client.api.tasks import create_task, delete_task, get_task, list_tasks, patch_task, replace_task
    from taskapi_client.api.users import create_user, get_user
    from taskapi_client.models import Error, Task, TaskPage, TaskPatch, User

    me = uuid.uuid4()
    client = AuthenticatedClient(base_url=base, token=token(str(me)).removeprefix("Bearer "))

    user = create_user.sync(client=client, body=User())
    assert isinstance(user, User) and user.id == me
    assert get_user.sync(me, client=client).id == me

    created = [create_task.sync(me, client=client, body=Task(title=f"Task {n}")) for n in range(3)]
    assert all(isinstance(task, Task) and task.version == 1 for task in created)

    first = list_tasks.sync(me, client=client, limit=2)
    assert isinstance(first, TaskPage) and len(first.items) == 2 and first.next_cursor
    rest = list_tasks.sync(me, client=client, limit=2, cursor=first.next_cursor)
    assert [t.id for t in first.items + rest.items] == [t.id for t in reversed(created)] and rest.next_cursor is None

    task = created[0]
    read = get_task.sync_detailed(me, task.id, client=client)
    etag = read.headers["ETag"]
    assert read.status_code == 200 and read.parsed.title == "Task 0" and etag == '"1"'

    patched = patch_task.sync(me, task.id, client=client, body=TaskPatch(is_completed=True), if_match=etag)
    assert isinstance(patched, Task) and patched.is_completed and patched.version == 2 and patched.title == "Task 0"

    stale = patch_task.sync_detailed(me, task.id, client=client, body=TaskPatch(title="lost update"), if_match=etag)
    assert stale.status_code == 412 and isinstance(stale.parsed, Error)
    assert stale.parsed.error.code == "PRECONDITION_FAILED" and stale.headers["ETag"] == '"2"'

    replaced = replace_task.sync(me, task.id, client=client, body=Task(title="Replaced"))
    assert replaced.title == "Replaced" and replaced.is_completed is False and replaced.version == 3

    bad = create_task.sync_detailed(me, client=client, body=Task(title="   "))
    assert bad.status_code == 400 and bad.parsed.error.code == "VALIDATION_ERROR"
    assert "title" in bad.parsed.error.details.to_dict()

    assert delete_task.sync_detailed(me, task.id, client=client).status_code == 204
    gone = get_task.sync_detailed(me, task.id, client=client)
    assert gone.status_code == 404 and isinstance(gone.parsed, Error) and gone.parsed.error.code == "TASK_NOT_FOUND"
