"""A real HTTP server on 127.0.0.1 for the downloader tests (a thread in the test process).

It serves files the test registers, honours ``Range: bytes=N-`` with 206 responses, and can misbehave
per path in the ways the downloaders must survive: drop the connection half-way through the body
(``drop_first=n``: the first n responses), answer 500 first (``fail_first=n``), or 404 (unregistered).
Every request is logged as (method, path with query, Range header) so tests can check what was asked.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Served:
    body: bytes
    drop_first: int = 0
    fail_first: int = 0
    calls: int = 0


class LoopbackServer:
    def __init__(self):
        self.files: dict[str, Served] = {}
        self.by_query: bool = False  # key files by path + query (cutout services) instead of the path
        self.log: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                return

            def do_GET(self):  # noqa: N802 (http.server's naming)
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, body: bytes, **behaviour) -> Served:
        served = self.files[path] = Served(body=body, **behaviour)
        return served

    def _key(self, raw_path: str) -> str:
        parts = urlsplit(raw_path)
        return f"{parts.path}?{parts.query}" if self.by_query and parts.query else parts.path

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        rng = h.headers.get("Range")
        with self._lock:
            self.log.append(("GET", h.path, rng))
            served = self.files.get(self._key(h.path))
            if served is not None:
                served.calls += 1
                call = served.calls
        if served is None:
            self._send(h, 404, b"not here")
            return
        if call <= served.fail_first:
            self._send(h, 500, b"try again")
            return
        body, start = served.body, 0
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
            if start >= len(body):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            h.send_response(200)
        part = body[start:]
        h.send_header("Content-Type", "application/fits")
        h.send_header("Content-Length", str(len(part)))
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        if call <= served.drop_first:
            h.wfile.write(part[: len(part) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # the peer sees the body end early
            return
        h.wfile.write(part)

    @staticmethod
    def _send(h, status: int, body: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
