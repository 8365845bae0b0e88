"""A threaded WSGI server for test and benchmark processes: runserver's, with a listen backlog for 200 clients.

    python -m tests.caching.serve_wsgi PORT   (DJANGO_SETTINGS_MODULE chooses the settings)
"""
from __future__ import annotations

import socket
import sys

import django


def main(port: int) -> None:
    django.setup()
    from django.core.servers.basehttp import WSGIServer, run
    from django.core.wsgi import get_wsgi_application

    class BacklogServer(WSGIServer):
        request_queue_size = 1024  # runserver's 10 refuses bursts; a real server listens deeper

        def get_request(self):
            # wsgiref writes headers and body apart: without TCP_NODELAY each response waits ~40 ms (Nagle).
            conn, addr = super().get_request()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn, addr

    run("127.0.0.1", port, get_wsgi_application(), threading=True, server_cls=BacklogServer)


if __name__ == "__main__":
    main(int(sys.argv[1]))
