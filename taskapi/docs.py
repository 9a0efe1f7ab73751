"""The API describing itself: /openapi.json (generated) and /docs (Swagger UI from the installed package, no CDN)."""

from functools import cache

from flask import Blueprint, current_app, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("docs", __name__)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>taskapi - API docs</title>
  <link rel="icon" href="data:,"><!-- no icon: spares the browser a request for /favicon.ico (a 404) -->
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

# validatorUrl null: Swagger UI would otherwise send the document's URL to validator.swagger.io from every browser
# that opens the page (leaking internal host names, and a broken badge on an air-gapped host).
INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
};
"""


# The only files of the vendored Swagger UI the page loads; the rest of that folder (a stock index.html that loads
# petstore.swagger.io, oauth2-redirect.html, source maps) is not served.
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")


@cache
def document(auth_mode):
    """Built once per process, on first request: the schemas cannot change while it runs."""
    from taskapi import openapi  # here, not at import: `python -m taskapi.openapi` must not find it imported

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


@bp.get(f"/docs/<any({', '.join(map(repr, ASSETS))}):filename>")
def docs_asset(filename):
    return send_from_directory(swagger_ui_path, filename)
