"""Real local receivers for delivery tests: an HTTP server that records every call (webhook, Slack-format,
SMS-provider) and fails or stalls on command, and an SMTP server (aiosmtpd) that keeps every message."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    port: int
    calls: list[Call] = field(default_factory=list)
    fail_next: int = 0  # answer the next N calls with `fail_status`
    fail_status: int = 503
    delay_s: float = 0.0  # stall every call this long (a slow channel)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                receiver.calls.append(Call(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = 200
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    status = receiver.fail_status
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if status == 200 else b"failing on command")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a slow-channel test)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def on(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]


class SmtpReceiver:
    def __init__(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's API
                receiver.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
                return "250 Message accepted for delivery"

        self.port = port
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
