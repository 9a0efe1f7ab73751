"""/healthz answers without the database; /readyz checks the database and pending migrations."""

from helpers import assert_error

from taskapi import create_app, migrate


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_healthz_needs_no_database():
    app = create_app({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "DB_POOL_TIMEOUT": "0.5"})
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}


def test_readyz_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_503_when_migrations_pending(new_database):
    url = new_database("taskapi_test_unmigrated")
    app = create_app({"DATABASE_URL": url})
    response = app.test_client().get("/readyz")
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["Retry-After"]
    migrate.apply(url)
    assert app.test_client().get("/readyz").status_code == 200


def test_readyz_503_when_database_unreachable():
    app = create_app(
        {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "DB_POOL_TIMEOUT": "0.5", "DB_CONNECT_TIMEOUT": "1"}
    )
    response = app.test_client().get("/readyz")
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["Retry-After"]
