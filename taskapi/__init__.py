"""taskapi: a REST service where each user keeps a list of tasks (Flask + hand-written PostgreSQL)."""

import os

from flask import Flask, request
from werkzeug.exceptions import NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

# Not imported here: migrate and openapi, which run as `python -m taskapi.migrate` / `-m taskapi.openapi` (runpy
# warns when the package has already imported the module it is asked to run).
from taskapi import auth, changes, config, db, docs, errors, health, logs, tasks, users
from taskapi.payload import READ_LIMIT
from taskapi.schemas import parse_path_ids


def create_app(overrides=None):
    """Build the app from the environment; `overrides` (string values, as in the environment) win over it."""
    from taskapi import migrate

    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.config.update(config.from_env({**os.environ, **(overrides or {})}))
    app.config.update(MAX_CONTENT_LENGTH=READ_LIMIT, MIGRATION_IDS=migrate.migration_ids())
    app.json.sort_keys = False  # fields in the documented order: id, user_id, title, ...
    app.json.ensure_ascii = False  # UTF-8 as it is ("Café"), not \u escapes: readable, and up to 6x smaller
    # `//` is not merged into `/` by a redirect (which would name the request's Host): it matches no route, 404.
    app.url_map.merge_slashes = False

    logs.init_app(app)
    errors.init_app(app)
    db.init_app(app)
    app.url_value_preprocessor(_no_encoded_slash)
    auth.init_app(app)  # its path check runs first: `me` and another user's id are decided before ids are parsed
    app.url_value_preprocessor(parse_path_ids)
    for blueprint in (users.bp, tasks.bp, changes.bp, health.bp, docs.bp):
        app.register_blueprint(blueprint)

    app.after_request(_no_type_without_content)

    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:  # only behind a proxy the operator named; otherwise X-Forwarded-* are ignored
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app


def _no_type_without_content(response):
    """204 and 304 answers have no body, so no media type either (Flask would label them text/html). Flask's own
    answer to OPTIONS (an empty 200 with Allow) is a 204, as clients expect of a body-less answer."""
    if request.method == "OPTIONS" and response.status_code == 200 and not response.get_data():
        response.status_code = 204
    if response.status_code in (204, 304):
        del response.headers["Content-Type"]
    return response


def _no_encoded_slash(endpoint, values):
    """A path with an encoded slash (`%2F`) names no resource: the server decoded it into a `/`, so it would match
    another route than the one the client wrote. 404, as for any path that matches no route."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    if "%2f" in raw.split("?", 1)[0].lower():
        raise NotFound()
