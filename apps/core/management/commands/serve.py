"""Run the ASGI web server and the django-q2 worker together in the foreground; Ctrl-C stops both."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from apps.core.conf import core_settings

STOP_GRACE_S = 10


def proxy_header_args() -> list[str]:
    """uvicorn's proxy-header flags that agree with BULWARK["CORE"]["TRUSTED_PROXIES"].

    By default uvicorn believes X-Forwarded-For from 127.0.0.1 and rewrites the client address before Django
    sees it, so a local client could pick its own per-IP bucket even with no trusted proxy. With none trusted,
    proxy headers are off; otherwise uvicorn trusts exactly the proxies Bulwark trusts (both walk the header
    from the right, so they name the same client).
    """
    proxies = list(core_settings.TRUSTED_PROXIES)
    if not proxies:
        return ["--no-proxy-headers"]
    return ["--proxy-headers", "--forwarded-allow-ips", ",".join(proxies)]


class Command(BaseCommand):
    help = "Start uvicorn (web) and qcluster (jobs) side by side, for development and the demo."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
        parser.add_argument("--no-worker", action="store_true", help="web only, no django-q2 worker")
        parser.add_argument("--demo-traffic", action="store_true",
                            help="also run `manage.py demo_traffic` against this server (make run's demo only)")

    def handle(self, *args, host: str, port: int, workers: int, no_worker: bool, demo_traffic: bool = False,
               **options) -> None:
        commands = {
            "web": [
                sys.executable, "-m", "uvicorn", "config.asgi:application",
                "--host", host, "--port", str(port), "--workers", str(workers), "--lifespan", "off",
                *proxy_header_args(),
            ],
        }
        if not no_worker:
            commands["worker"] = [sys.executable, "manage.py", "qcluster"]
        if demo_traffic:
            # Provided by the console app (a higher layer): named here only as a command to start.
            commands["traffic"] = [sys.executable, "manage.py", "demo_traffic", "--base-url", f"http://{host}:{port}"]
        children = {name: subprocess.Popen(argv) for name, argv in commands.items()}
        self.stdout.write(self.style.SUCCESS(f"Bulwark is starting: admin at http://{host}:{port}/admin/, "
                                             f"API docs at http://{host}:{port}/api/docs/"))
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with code {child.returncode}; stopping the rest.")
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.2)
        self._stop_all(children)
        self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)

    def _stop_all(self, children: dict[str, subprocess.Popen]) -> None:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
