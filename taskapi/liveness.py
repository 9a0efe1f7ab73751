"""Liveness answered by the gunicorn master (see gunicorn.conf.py), on a port of its own.

Only `GET /healthz` is answered: 200 `{"status": "ok"}` while the master has workers, else 503; anything else is
the API's 404 / 405 envelope. No database call, no logging: it must answer whatever the workers are doing.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from taskapi.errors import envelope


def serve(bind, alive):
    """Start answering on `bind` ("host:port") in a daemon thread; `alive()` says whether the service is up."""
    host, _, port = bind.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        server_version = sys_version = ""  # no software names in the Server header

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path != "/healthz":
                return self._answer(404, envelope("NOT_FOUND", "Resource not found."))
            if alive():
                return self._answer(200, {"status": "ok"})
            return self._answer(503, envelope("SERVICE_UNAVAILABLE", "No worker is running."))

        def do_HEAD(self):  # noqa: N802
            self.do_GET()

        def _answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, *args):
            pass

        def __getattr__(self, name):  # any other method: 405 in the envelope
            if name.startswith("do_"):
                return lambda: self._answer(405, envelope("METHOD_NOT_ALLOWED", "Method not allowed."))
            raise AttributeError(name)

    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="liveness").start()
    return server
