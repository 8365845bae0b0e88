"""Streaming responses that stay streaming under ASGI.

Django's ASGI handler reads a synchronous streaming iterator whole (`sync_to_async(list)`) before sending
a byte, so a large export or download would sit in memory. Under ASGI, `stream()` hands Django an async
iterator that pulls a few chunks at a time on the request's own thread (where its database cursor lives).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from functools import partial
from itertools import islice
from typing import IO

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest

CHUNKS_PER_PULL = 64
FILE_CHUNK_BYTES = 64 * 1024


def stream(request: HttpRequest, chunks: Iterable) -> Iterable | AsyncIterator:
    """`chunks` as they are under WSGI; under ASGI, an async iterator pulling them in small batches."""
    if isinstance(request, ASGIRequest):
        return _pull(iter(chunks))
    return chunks


async def _pull(iterator: Iterator) -> AsyncIterator:
    take = partial(lambda it: list(islice(it, CHUNKS_PER_PULL)), iterator)
    try:
        while True:
            batch = await sync_to_async(take, thread_sensitive=True)()
            if not batch:
                return
            yield batch[0][:0].join(batch)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=True)()


def file_response(request: HttpRequest, handle: IO[bytes], **kwargs) -> FileResponse:
    """A FileResponse (length, type, disposition) whose body streams under ASGI too."""
    response = FileResponse(handle, **kwargs)
    if isinstance(request, ASGIRequest):
        response.streaming_content = _pull(iter(partial(handle.read, FILE_CHUNK_BYTES), b""))
    return response
