"""A local HTTP server for the source tests: recorded or synthesized responses, no network.

Usage (the helpers are attributes of the fixture, so tests need not import this conftest)::

    def test_x(http_server):
        Reply, static = http_server.Reply, http_server.static
        http_server.routes["/a.csv"] = "id,x\\n1,2\\n"                    # 200, text body
        http_server.routes["/busy"] = [503, 503, Reply(200, b"ok")]       # scripted, last repeats
        http_server.routes["/tile.tif"] = static(b"...", "image/tiff")    # honours Range
        http_server.routes["/api/*"] = lambda req: Reply(200, req.path)   # fnmatch pattern
        r = requests.get(http_server.url + "/a.csv")
        assert http_server.requests[-1].headers["User-Agent"] == "flarewatch"

A route value may be: a callable ``handler(req) -> response``; a response; or a list/tuple of
responses served in order (the last one repeats). A response is a ``Reply``, ``bytes``/``str``
(200), an ``int`` (that status, short text body), or a tuple ``(status, body[, headers])``.
Exact paths win over patterns; unknown paths answer 404. Every request is recorded in
``http_server.requests`` (``Request``: method, path, query, headers, body) and per path in
``http_server.hits``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Reply:
    """One HTTP response. ``delay_s`` sleeps before answering (to provoke client timeouts)."""

    status: int = 200
    body: bytes | str = b""
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0

    def payload(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else bytes(self.body)


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")

    def arg(self, name: str, default=None):
        """First value of query parameter ``name``."""
        return self.query.get(name, [default])[0]


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def serve_range(req: Request, data: bytes, content_type: str = "application/octet-stream",
                headers: dict | None = None) -> Reply:
    """``data`` honouring a single ``Range: bytes=a-b`` / ``a-`` / ``-n`` (206, 416), else 200."""
    base = {"Content-Type": content_type, "Accept-Ranges": "bytes", **(headers or {})}
    spec = req.headers.get("Range") or req.headers.get("range")
    if not spec:
        return Reply(200, data, base)
    m = _RANGE.match(spec.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return Reply(200, data, base)  # multi-range or malformed: the whole body, as servers may
    n = len(data)
    if m.group(1) == "":
        length = int(m.group(2))
        start, end = max(n - length, 0), n - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), n - 1) if m.group(2) else n - 1
    if start >= n or start > end:
        return Reply(416, b"", {**base, "Content-Range": f"bytes */{n}"})
    return Reply(206, data[start : end + 1], {**base, "Content-Range": f"bytes {start}-{end}/{n}"})


def static(data: bytes | str, content_type: str = "application/octet-stream", headers: dict | None = None):
    """A route handler serving ``data`` with Range support."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return lambda req: serve_range(req, payload, content_type, headers)


def _to_reply(value, req: Request) -> Reply:
    if callable(value) and not isinstance(value, (Reply, bytes, str)):
        value = value(req)
    if isinstance(value, Reply):
        return value
    if isinstance(value, (bytes, str)):
        return Reply(200, value)
    if isinstance(value, int):
        return Reply(value, f"HTTP {value}\n")
    if isinstance(value, tuple):
        status, body, *rest = value
        return Reply(status, body, dict(rest[0]) if rest else {})
    raise TypeError(f"cannot turn {value!r} into an HTTP reply")


class LocalHTTPServer:
    # Helpers reachable from tests without importing this conftest (module name clashes):
    # ``http_server.Reply(...)``, ``http_server.static(data, ctype)``, ``http_server.serve_range``.
    Reply = Reply
    static = staticmethod(static)
    serve_range = staticmethod(serve_range)

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.requests: list[Request] = []
        self.hits: dict[str, int] = defaultdict(int)
        self._cursor: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output quiet
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
                reply = outer._dispatch(req)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    hdrs = {k.lower(): (k, v) for k, v in reply.headers.items()}
                    for k, v in hdrs.values():
                        if k.lower() != "content-length":
                            self.send_header(k, str(v))
                    if "content-type" not in hdrs:
                        self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout tests)
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _dispatch(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            self.hits[req.path] += 1
            key = req.path if req.path in self.routes else next(
                (p for p in self.routes if any(c in p for c in "*?[") and fnmatch.fnmatchcase(req.path, p)), None
            )
            if key is None:
                return Reply(404, f"no route for {req.path}\n")
            value = self.routes[key]
            if isinstance(value, list | tuple) and not (
                isinstance(value, tuple) and value and isinstance(value[0], int) and len(value) in (2, 3)
                and isinstance(value[1], bytes | str)
            ):
                i = self._cursor[key]
                self._cursor[key] = i + 1
                value = value[min(i, len(value) - 1)]
        try:
            return _to_reply(value, req)
        except Exception as exc:  # noqa: BLE001 - a broken handler is a test bug: make it visible as a 599
            return Reply(599, f"test handler failed: {exc!r}\n")

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def reset(self):
        with self._lock:
            self.routes.clear()
            self.requests.clear()
            self.hits.clear()
            self._cursor.clear()

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.live`` tests talk to the real providers: skipped unless FLAREWATCH_LIVE_TESTS=1."""
    import os

    if os.environ.get("FLAREWATCH_LIVE_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="live test: set FLAREWATCH_LIVE_TESTS=1 and the provider credentials to run it")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def http_server():
    """A fresh ``LocalHTTPServer`` on 127.0.0.1 (free port) for one test."""
    server = LocalHTTPServer()
    try:
        yield server
    finally:
        server.close()
