"""A small, stdlib-only inference server for the model baked into this image.

GET  /health   -> {"status": "ok", "version": ..., "model": ..., "model_sha256": ...,
                   "fingerprint": ..., "model_file_sha256": ...}
POST /predict  <- {"inputs": [[f1, f2, f3, f4], ...]}   with Content-Type: application/json
               -> {"predictions": [{"label": ..., "probabilities": {...}}, ...], "version": ...}

Every answer is strict JSON (never NaN or Infinity); a refusal is {"error": "<what to fix>"}:
400 malformed request, body, JSON or shape; 404 unknown path; 405 wrong method; 408 request not
sent in time; 411 no Content-Length; 413 body over 1 MiB; 414 request line over 8 KiB; 415 body
not application/json; 422 numbers so large that the model's scores overflow; 431 headers too
large; 503 all connections busy, or shutting down.

The names in /health mean what they mean everywhere else in this project:
  model_sha256       digest of the build context, `sha256:<hex>`: the image label
                     `model-registry.model.sha256` and the stack output `model_sha256`
                     (build arg MODEL_SHA256, passed in as ENV); null if built without it
  fingerprint        the image label `model-registry.fingerprint` (build arg MODEL_FINGERPRINT,
                     passed in as ENV); null if built without it
  model_file_sha256  `sha256:<hex>` of the model file this server loaded (MODEL_PATH)
  shards             only when the model file lists weight shards (`"shards": [<file>, ...]`,
                     paths relative to the model file): `{<file>: "sha256:<hex>"}` of each shard
                     as read at start-up. The image lays large models out in several layers
                     (lib/publication/layers.ts), all under the model file's directory, so the server finds
                     every shard where the model file names it; a missing one stops the start.

Limits, from the environment:
  MAX_CONNECTIONS          connections served at once, one thread each (default 64); a connection
                           beyond that is answered 503 and closed at once
  REQUEST_TIMEOUT_SECONDS  time a client has to send one whole request, line, headers and body
                           (default 10); then it is answered 408 and closed. Also the socket timeout
                           for sending the answer.
One request per connection (HTTP/1.0). SIGTERM or SIGINT: stop accepting, finish the answers in
progress (for up to 5 s), exit 0. Log lines escape control characters, so a request cannot write
terminal escape codes into the log.

`server.py --healthcheck` asks a running server for /health and exits 0 when it answers ok
(the image's HEALTHCHECK).
"""

import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from inference import BadNumber, Unprocessable, load_model, parse_json, predict, validate_rows

MAX_BODY = 1 << 20
MAX_REQUEST_LINE = 8 * 1024
SHUTDOWN_GRACE_SECONDS = 5.0
# After refusing a request whose body was not read, read and discard what the client still sends
# for this long (and up to this much), so it sees the answer instead of a reset connection.
LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * MAX_BODY

_log_lock = threading.Lock()


def printable(text):
    """`text` with backslashes and every non-printing character (ESC, CR, LF, C1 controls...)
    escaped, so that a log line is one line and a terminal shows it as it is."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def log(text):
    with _log_lock:
        sys.stderr.write(printable(text) + "\n")
        sys.stderr.flush()


class Handler(BaseHTTPRequestHandler):
    """One request per connection. Answers only through `reply`, which writes strict JSON."""

    server_version = "model-server"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    timeout = 10.0  # socket timeout; set from REQUEST_TIMEOUT_SECONDS by main()
    model = None  # set by main()
    health = {}  # the /health answer, set by main()

    def setup(self):
        super().setup()
        self.interrupted = None  # the status to answer when the server cuts the reading short
        self.answered = False
        self.linger = False  # refused before reading everything the client sends
        self.requestline = ""
        self.request_version = ""
        self.command = ""

    def interrupt(self, status):
        """From the server's deadline thread: stop reading this request (the socket stays
        writable for the answer)."""
        self.interrupted = status
        try:
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def handle(self):
        self.close_connection = True
        self.server.reading(self)
        try:
            self.handle_request()
        except TimeoutError:
            self.refuse_late(HTTPStatus.REQUEST_TIMEOUT)
        except OSError as e:
            log(f"{self.address_string()} connection lost: {e}")
        finally:
            self.server.answering(self)

    def handle_request(self):
        line = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if not line:
            return  # connected and sent nothing: close quietly
        if len(line) > MAX_REQUEST_LINE:
            self.linger = True
            message = f"the request line is over {MAX_REQUEST_LINE} bytes"
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG, message)
            return
        if not line.endswith(b"\n"):
            self.requestline = line.decode("iso-8859-1")
            self.refuse_late(self.interrupted or HTTPStatus.BAD_REQUEST)
            return
        self.raw_requestline = line
        if not self.parse_request():  # reads the headers; answers a bad line or header itself
            return
        if self.interrupted:  # the headers were cut short
            self.refuse_late(self.interrupted)
            return
        if self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 is not supported")
            return
        # RFC 9112: no white space between a field name and its colon; a server must refuse it
        # (it would otherwise be read as another header, "Content-Length ").
        # The header parser stops at such a line (a "defect") and reads the rest as the body.
        bad = next((n for n in self.headers.keys() if n != n.strip() or not n), None)
        if bad is not None or self.headers.defects:
            self.linger = True
            self.send_error(
                HTTPStatus.BAD_REQUEST,
                "a malformed header line (white space in the header name, or no colon)",
            )
            return
        routes = {
            "/health": {"GET": self.get_health, "HEAD": self.get_health},
            "/predict": {"POST": self.post_predict},
        }
        methods = routes.get(self.path.split("?", 1)[0])
        if methods is None:
            self.linger = True
            self.reply(HTTPStatus.NOT_FOUND, {"error": "not found: GET /health or POST /predict"})
        elif self.command not in methods:
            self.linger = True
            allowed = ", ".join(methods)
            error = {"error": f"use {allowed}"}
            self.reply(HTTPStatus.METHOD_NOT_ALLOWED, error, [("Allow", allowed)])
        else:
            try:
                methods[self.command]()
            except OSError:
                raise  # the connection: a timeout is answered 408, a lost client is logged
            except Exception:
                log(f"{self.address_string()} internal error: {traceback.format_exc()}")
                self.reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

    def get_health(self):
        self.server.answering(self)
        self.linger = "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
        self.reply(HTTPStatus.OK, self.health)

    def post_predict(self):
        if "Transfer-Encoding" in self.headers:
            self.linger = True
            self.send_error(
                HTTPStatus.LENGTH_REQUIRED,
                "send the body with a Content-Length header (no Transfer-Encoding)",
            )
            return
        lengths = {v.strip() for v in self.headers.get_all("Content-Length", [])}
        if not lengths:
            self.send_error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
            return
        text = lengths.pop()
        if lengths or not re.fullmatch(r"[0-9]+", text):
            self.linger = True
            self.send_error(
                HTTPStatus.BAD_REQUEST, "Content-Length must be one decimal number of bytes"
            )
            return
        text = text.lstrip("0") or "0"  # 0034 is 34 bytes
        if len(text) > 9 or int(text) > MAX_BODY:
            self.linger = True
            self.send_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {MAX_BODY} bytes"
            )
            return
        length = int(text)
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            self.refuse_late(
                self.interrupted or HTTPStatus.BAD_REQUEST,
                f"the body ended after {len(data)} of {length} bytes",
            )
            return
        self.server.answering(self)
        content_type = self.headers.get_content_type()
        if "Content-Type" not in self.headers or content_type != "application/json":
            self.send_error(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "send the body as Content-Type: application/json",
            )
            return
        if not data:
            self.send_error(HTTPStatus.BAD_REQUEST, "the body is empty")
            return
        try:
            body = parse_json(data)
        except BadNumber as e:
            self.send_error(HTTPStatus.BAD_REQUEST, str(e))
            return
        except RecursionError:
            self.send_error(HTTPStatus.BAD_REQUEST, "the body is nested too deeply")
            return
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST, "the body is not valid JSON")
            return
        rows, error = validate_rows(self.model, body)
        if error:
            self.send_error(HTTPStatus.BAD_REQUEST, error)
            return
        try:
            predictions = predict(self.model, rows)
        except Unprocessable as e:
            self.send_error(HTTPStatus.UNPROCESSABLE_ENTITY, str(e))
            return
        self.reply(HTTPStatus.OK, {"predictions": predictions, "version": self.health["version"]})

    def refuse_late(self, status, message=None):
        """The request did not arrive whole: 408 (too slow), 503 (shutting down) or 400."""
        messages = {
            HTTPStatus.REQUEST_TIMEOUT: "the request was not sent in time",
            HTTPStatus.SERVICE_UNAVAILABLE: "the server is shutting down",
        }
        self.send_error(status, messages.get(status) or message or "the request is incomplete")

    def send_error(self, code, message=None, explain=None):
        """Every refusal, also those of the standard request parser, as JSON."""
        self.reply(code, {"error": message or HTTPStatus(code).phrase})

    def reply(self, status, payload, headers=()):
        if self.answered:
            return
        self.answered = True
        self.close_connection = True
        status = HTTPStatus(status)
        try:
            body = json.dumps(payload, allow_nan=False).encode()
        except ValueError:
            log(f"{self.address_string()} internal error: a non-finite number in the answer")
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, b'{"error": "internal error"}'
        head = [
            f"{self.protocol_version} {status.value} {status.phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{k}: {v}" for k, v in headers),
        ]
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            head.append("Retry-After: 1")
        self.log_request(status.value, len(body))
        # A HEAD answer has the GET answer's headers and no body (RFC 9110).
        sent = b"" if self.command == "HEAD" else body
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + sent)

    def finish(self):
        super().finish()
        if self.linger and not self.interrupted:
            drain(self.connection)

    def log_request(self, code="-", size="-"):
        log(f'{self.address_string()} "{self.requestline}" {code} {size}')

    def log_message(self, format, *args):
        log(f"{self.address_string()} {format % args}")


def drain(conn):
    """Half-closes `conn` and discards what the client still sends, for a little while."""
    try:
        conn.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        left = LINGER_BYTES
        while left > 0 and (remaining := deadline - time.monotonic()) > 0:
            conn.settimeout(remaining)
            chunk = conn.recv(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)
    except OSError:
        pass


class Server(ThreadingHTTPServer):
    """At most `max_connections` handler threads; each request must arrive within
    `request_timeout` seconds, enforced by one deadline thread."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, max_connections, request_timeout):
        super().__init__(address, Handler)
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.slots = threading.BoundedSemaphore(max_connections)
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.active = 0
        self.deadlines = {}  # handler -> monotonic deadline, while it reads its request
        self.closing = False
        threading.Thread(target=self.enforce_deadlines, name="deadlines", daemon=True).start()

    def process_request(self, request, client_address):
        if self.closing or not self.slots.acquire(blocking=False):
            self.turn_away(request, client_address)
            return
        with self.lock:
            self.active += 1
        try:
            super().process_request(request, client_address)  # starts the handler thread
        except BaseException:
            self.done()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.done()

    def done(self):
        with self.lock:
            self.active -= 1
            self.idle.notify_all()
        self.slots.release()

    def turn_away(self, request, client_address):
        body = b'{"error": "busy: every connection is in use; retry shortly"}'
        head = (
            "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        try:
            request.settimeout(1.0)
            request.sendall(head.encode() + body)
            # Take what the client already sent, without waiting: closing a socket with unread
            # data resets the connection, and the client might not see the answer.
            request.setblocking(False)
            request.recv(65536)
        except OSError:
            pass
        self.shutdown_request(request)
        log(f"{client_address[0]} turned away (503): {self.max_connections} connections busy")

    def reading(self, handler):
        with self.lock:
            now = time.monotonic()
            self.deadlines[handler] = 0.0 if self.closing else now + self.request_timeout

    def answering(self, handler):
        with self.lock:
            self.deadlines.pop(handler, None)

    def enforce_deadlines(self):
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self.lock:
                late = [h for h, deadline in self.deadlines.items() if deadline <= now]
                for h in late:
                    del self.deadlines[h]
                status = HTTPStatus.REQUEST_TIMEOUT
                if self.closing:
                    status = HTTPStatus.SERVICE_UNAVAILABLE
            for h in late:
                h.interrupt(status)

    def stop(self, grace):
        """Stops accepting, cuts off requests still arriving, waits up to `grace` seconds for the
        answers in progress. Returns how many connections were still open."""
        self.shutdown()  # serve_forever returns: nothing new is accepted
        self.server_close()
        with self.lock:
            self.closing = True
            for h in self.deadlines:
                self.deadlines[h] = 0.0
            self.idle.wait_for(lambda: self.active == 0, timeout=grace)
            return self.active

    def handle_error(self, request, client_address):
        log(f"{client_address[0]} internal error: {traceback.format_exc()}")


def healthcheck(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return 0 if json.load(r).get("status") == "ok" else 1
    except Exception:
        return 1


def setting(name, default, parse, minimum, maximum):
    text = os.environ.get(name, "")
    try:
        value = parse(text) if text else default
        if not (math.isfinite(value) and minimum <= value <= maximum):
            raise ValueError
        return value
    except (ValueError, OverflowError):
        sys.exit(f"{name}={text!r}: expected a number from {minimum} to {maximum}")


def main():
    port = setting("PORT", 8080, int, 1, 65535)
    if "--healthcheck" in sys.argv:
        sys.exit(healthcheck(port))
    max_connections = setting("MAX_CONNECTIONS", 64, int, 1, 10_000)
    request_timeout = setting("REQUEST_TIMEOUT_SECONDS", 10.0, float, 0.1, 3600.0)
    model = load_model(os.environ.get("MODEL_PATH", "/opt/model/model.json"))
    Handler.model = model
    Handler.timeout = request_timeout
    Handler.health = {
        "status": "ok",
        "version": os.environ.get("MODEL_VERSION") or "unknown",
        "model": model["name"],
        "model_sha256": os.environ.get("MODEL_SHA256") or None,
        "fingerprint": os.environ.get("MODEL_FINGERPRINT") or None,
        "model_file_sha256": model["file_sha256"],
    }
    if model["shard_sha256"]:
        Handler.health["shards"] = model["shard_sha256"]

    # SIGTERM (docker stop) and SIGINT are taken by this thread alone, with sigwait. They get a
    # handler too: as PID 1 in a container, a signal left at its default action is dropped.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    for s in stop_signals:
        signal.signal(s, lambda *_: None)
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # inherited by every thread below
    server = Server(("0.0.0.0", port), max_connections, request_timeout)
    threading.Thread(target=server.serve_forever, name="accept", daemon=True).start()
    log(
        f"serving {model['name']} version {Handler.health['version']} on :{port} "
        f"(at most {max_connections} connections, {request_timeout:g} s per request)"
    )
    received = signal.sigwait(stop_signals)
    log(f"{signal.Signals(received).name}: stopping")
    left = server.stop(SHUTDOWN_GRACE_SECONDS)
    log("stopped" if not left else f"stopped with {left} connection(s) still open")


if __name__ == "__main__":
    main()
