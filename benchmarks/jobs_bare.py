"""The bare django-q2 task of the jobs benchmark: appends one byte to a file, which every process shares
(the Django cache is per-process memory when REDIS_URL is unset, so it cannot count across workers)."""
from __future__ import annotations

import os


def done(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b".")  # O_APPEND: one atomic append per task, from any process
    finally:
        os.close(fd)
