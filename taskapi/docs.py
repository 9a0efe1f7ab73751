"""The API describing itself: /openapi.json (generated) and /docs (Swagger UI from the installed package, no CDN)."""

from functools import cache

from flask import Blueprint, current_app, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from taskapi import openapi

bp = Blueprint("docs", __name__)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>taskapi - API docs</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/taskapi-init.js"></script>
</body>
</html>
"""

INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
};
"""


@cache
def document(auth_mode):
    """Built once per process, on first request: the schemas cannot change while it runs."""
    return openapi.build(auth_mode)


@bp.get("/openapi.json")
def openapi_json():
    return document(current_app.config["AUTH_MODE"])


@bp.get("/docs")
def docs_page():
    return PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/docs/taskapi-init.js")
def docs_init():
    return INIT, 200, {"Content-Type": "text/javascript; charset=utf-8"}


@bp.get("/docs/<path:filename>")
def docs_asset(filename):
    return send_from_directory(swagger_ui_path, filename)
