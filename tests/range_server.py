"""A static file server on loopback with HTTP Range support that counts what it serves.

Enough of HTTP/1.1 for GDAL's /vsicurl/ and pystac's urllib reads: HEAD, GET, single byte ranges
(206 with Content-Range, 416 outside the file). It counts the body bytes sent per path, so tests
can prove a reader took windows and not whole files, and it can be told to misbehave per path:
``short_bodies`` sends half of each body under a Content-Length for all of it (a transfer cut short,
as a proxy or a stale object size gives), ``understated`` answers HEAD with half the real size (a
stale size in a cache or an index) while GETs serve the real bytes, ``down`` answers 503 to everything.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeServer:
    """Serves ``root`` at :attr:`url` (``http://127.0.0.1:<port>/``) from a background thread."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.served: Counter[str] = Counter()
        """Body bytes sent per URL path."""
        self.requests: list[tuple[str, str, str | None]] = []
        """(method, path, Range header) of every request."""
        self.short_bodies: set[str] = set()
        self.understated: set[str] = set()
        self.down = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def served_bytes(self, relative: str) -> int:
        """Body bytes sent for the file at ``relative`` (a path under root, posix style)."""
        return self.served["/" + relative.lstrip("/")]

    def reset(self) -> None:
        with self._lock:
            self.served.clear()
            self.requests.clear()

    def record(self, method: str, path: str, byte_range: str | None, sent: int) -> None:
        with self._lock:
            self.requests.append((method, path, byte_range))
            self.served[path] += sent

    def file_for(self, path: str) -> Path | None:
        candidate = (self.root / unquote(path).lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler(server: RangeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet tests; RangeServer.requests keeps what matters

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            path = urlsplit(self.path).path
            byte_range = self.headers.get("Range")
            if server.down:
                self._status(503, path, byte_range)
                return
            file = server.file_for(path)
            if file is None:
                self._status(404, path, byte_range)
                return
            data = file.read_bytes()
            size = len(data)
            start, stop, status = 0, size, 200
            if byte_range:
                match = _RANGE.match(byte_range.strip())
                first = match.group(1) if match else ""
                last = match.group(2) if match else ""
                if match is None or (not first and not last):
                    self._status(416, path, byte_range, size)
                    return
                if first:
                    start = int(first)
                    stop = min(size, int(last) + 1) if last else size
                else:  # a suffix range: the last N bytes
                    start = max(0, size - int(last))
                if start >= size:
                    self._status(416, path, byte_range, size)
                    return
                status = 206
            payload = data[start:stop]
            declared = len(payload)
            if path in server.understated and not body:
                declared = len(payload) // 2
            self.send_response(status)
            self.send_header("Content-Type", _media_type(file))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(declared))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
            cut = path in server.short_bodies and body
            if cut:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            sent = 0
            if body:
                chunk = payload[: len(payload) // 2] if cut else payload
                self.wfile.write(chunk)
                sent = len(chunk)
            server.record(self.command, path, byte_range, sent)

        def _status(self, code: int, path: str, byte_range: str | None, size: int | None = None) -> None:
            self.send_response(code)
            if size is not None:
                self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            server.record(self.command, path, byte_range, 0)

    return Handler


def _media_type(file: Path) -> str:
    if file.suffix == ".json":
        return "application/json"
    if file.suffix in (".tif", ".tiff"):
        return "image/tiff"
    return "application/octet-stream"


@contextmanager
def serving(root: Path) -> Iterator[RangeServer]:
    """A started :class:`RangeServer` over ``root``, stopped on exit."""
    server = RangeServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
