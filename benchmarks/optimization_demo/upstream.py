"""A real local HTTP dependency for the demo: /ok answers at once, /fail answers 500 after `FAIL_MS`, /flaky
fails `FLAKY_RUN` calls in a row, then succeeds as many, and so on (a breaker on it keeps opening and closing)."""
from __future__ import annotations

import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAIL_MS = 150
FLAKY_RUN = 4
_flaky_calls = itertools.count()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server name
        if self.path.startswith("/fail"):
            time.sleep(FAIL_MS / 1000)
            status, body = 500, b'{"error": "down"}'
        elif self.path.startswith("/flaky") and (next(_flaky_calls) // FLAKY_RUN) % 2 == 0:
            status, body = 503, b'{"error": "flaky"}'
        else:
            status, body = 200, b'{"rate": 1.1}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Upstream:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
