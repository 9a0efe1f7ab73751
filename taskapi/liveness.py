"""Liveness answered by the gunicorn master (see gunicorn.conf.py), on a port of its own.

`GET /healthz` is answered 200 `{"status": "ok"}` while the master has workers, else 503, and so are the routes
serve() is given (gunicorn.conf.py adds `/metrics`); anything else is the API's 404 / 405 envelope (http.server's
own refusals too: 400, 414, 431). Every answer says `Cache-Control: no-store` and `X-Content-Type-Options:
nosniff`, as the app's do. No database call, no logging: it must answer whatever the workers are doing.

Whoever reaches the port must not be able to pile up threads in the master: each connection gets a thread only
while fewer than MAX_CONNECTIONS are open (beyond that it is closed at once, unanswered), and its whole request
must arrive within READ_TIMEOUT seconds of it being taken up, however the bytes trickle in. One request per
connection (HTTP/1.0, closed after the answer), so nothing idles between requests either.

More paths (`/metrics`, from gunicorn.conf.py) are given to serve() as `routes`: path -> a function of no
argument returning (status, content type, body bytes).
"""

import functools
import io
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from taskapi.errors import code_for, envelope

# A probe writes its whole request as soon as it is connected, so it arrives within a round trip; a client still
# sending after 2 s is not a probe, and the probe it could be has given up already (kubelet's default probe
# timeout is 1 s).
READ_TIMEOUT = 2.0
# Probes come a few at a time and are answered in well under a millisecond; 32 at once is far beyond any of them,
# and bounds what the master spends on this port (one thread and one socket each).
MAX_CONNECTIONS = 32


def serve(bind, alive, routes=None, *, read_timeout=READ_TIMEOUT, max_connections=MAX_CONNECTIONS):
    """Start answering on `bind` ("host:port") in a daemon thread; `alive()` says whether the service is up;
    `routes` adds paths beside /healthz."""
    host, _, port = bind.rpartition(":")
    routes = {**(routes or {}), "/healthz": functools.partial(_healthz, alive)}
    server = _Server((host or "127.0.0.1", int(port)), routes, read_timeout, max_connections)
    threading.Thread(target=server.serve_forever, daemon=True, name="liveness").start()
    return server


def _json(status, body):
    return status, "application/json", json.dumps(body).encode()


def _healthz(alive):
    if alive():
        return _json(200, {"status": "ok"})
    return _json(503, envelope("SERVICE_UNAVAILABLE", "No worker is running."))


class _Server(HTTPServer):
    """http.server's HTTPServer with a thread per connection, as ThreadingHTTPServer, but at most `max_connections`
    of them: a slot is taken without waiting when the connection is accepted, and given back when its thread is
    done with it (errors included), or at once if the thread cannot start."""

    # Connections beyond the cap are closed as fast as they are accepted, so a burst only queues in the kernel for
    # a moment; a backlog it overflows (socketserver's is 5) leaves the rest of it, a probe among them, waiting a
    # second or more for TCP to retry the handshake. gunicorn's own backlog is 2048.
    request_queue_size = 1024

    def __init__(self, address, routes, read_timeout, max_connections):
        self.routes = routes
        self.read_timeout = read_timeout
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            # Closed unanswered: an answer (a 503 would also read as "no worker") could only be written here, in
            # the accepting thread, and a request already sent but unread turns the close into a reset anyway.
            self.shutdown_request(request)
            return
        try:
            threading.Thread(
                target=self._handle, args=(request, client_address), daemon=True, name="liveness-connection"
            ).start()
        except BaseException:
            self.slots.release()  # no thread, nothing else gives the slot back; the caller closes the socket
            raise

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            try:
                self.slots.release()  # first: a client that sees its connection end finds its slot free again
            finally:
                self.shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client that resets or goes away (OSError) is no error of ours, and must not write into the master's log;
        # anything else is a bug, and gets socketserver's traceback on stderr.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _RequestReader(io.RawIOBase):
    """The connection's bytes under one deadline for the whole request, not one per read: a client trickling a
    byte at a time is dropped as surely as an idle one."""

    def __init__(self, sock, deadline):
        super().__init__()
        self.sock, self.deadline = sock, deadline

    def readable(self):
        return True

    def readinto(self, buffer):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")  # http.server closes the connection
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server_version = sys_version = ""  # no software names in the Server header

    def setup(self):
        self.timeout = self.server.read_timeout  # StreamRequestHandler sets it on the socket
        super().setup()
        self.rfile.close()  # replaced by a reader holding the whole request to one deadline
        self.rfile = io.BufferedReader(_RequestReader(self.connection, time.monotonic() + self.timeout))

    def do_GET(self):  # noqa: N802 (http.server's naming)
        route = self.server.routes.get(self.path)
        if route is None:
            return self._answer(*_json(404, envelope("NOT_FOUND", "Resource not found.")))
        return self._answer(*route())

    def do_HEAD(self):  # noqa: N802
        self.do_GET()

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a malformed request line, one over 64 KiB, too many or too long headers)."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # http.server's guess for a line it cannot parse: no status, no headers
            self.request_version = "HTTP/1.0"
        reason = "URI Too Long" if code == 414 else self.responses[code][0]  # RFC 9110's name, as gunicorn's 414
        self._answer(*_json(code, envelope(*code_for(code, reason))))

    def _answer(self, status, content_type, data):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, *args):
        pass

    def __getattr__(self, name):  # any other method: 405 in the envelope
        if name.startswith("do_"):
            return lambda: self._answer(*_json(405, envelope("METHOD_NOT_ALLOWED", "Method not allowed.")))
        raise AttributeError(name)
