"""How gunicorn serves taskapi (gunicorn.conf.py names these): its sync worker, minus two costs the API does not need.

- Closing. gunicorn 27 ends every connection as RFC 9112 (9.6) advises against a reset: it half-closes, then
  waits, up to 2 s, for the client to close its end too, reading whatever still arrives. The risk it guards
  against is request bytes reaching a fully closed socket: the kernel answers them with a reset, which may destroy
  the answer before the client has read it. A sync worker serves no one while it waits: a round trip through the
  client, for every request. When the request has been read to its last byte and nothing more has arrived, no
  such bytes are coming (a client sends nothing more on a connection the answer closes), so the socket is closed
  at once. Otherwise (a body refused unread, such as a 413; a chunked body; a client that pipelined) gunicorn's
  careful close runs as before.
- Access lines. The app writes its own (taskapi.access, with the request id); gunicorn's access logger is off, but
  still formats its atoms for every request when a logging dict is configured. It is told to do nothing.
"""

import socket

from gunicorn.glogging import Logger
from gunicorn.http.body import LengthReader
from gunicorn.workers.sync import SyncWorker


class Worker(SyncWorker):
    def handle_request(self, listener, req, client, addr):
        super().handle_request(listener, req, client, addr)
        if not self.cfg.is_ssl and _read_to_the_end(req) and _nothing_more_from(client):
            # gunicorn's close, which follows, then finds the reading side shut and closes without waiting.
            client.shutdown(socket.SHUT_RDWR)


def _read_to_the_end(req):
    reader = req.body.reader
    return isinstance(reader, LengthReader) and reader.length == 0


def _nothing_more_from(client):
    try:
        return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""  # b"": the client has closed already
    except BlockingIOError:
        return True
    except OSError:
        return False


class NoAccessLogger(Logger):
    def access(self, resp, req, environ, request_time):
        pass
