"""Reading an ASGI request body whole, then handing it on to the app as if unread.

The request guard does this for bodies sent without a Content-Length (it must count them
against the limit) and the V2 fast path for every infer body (it must see the JSON before
deciding who answers); both then pass the body on unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Receive = Callable[[], Awaitable[dict]]


class BodyTooLarge(Exception):
    """The body grew past the limit; what was read is dropped."""


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """Every chunk of the body joined; None when the client went away before the end."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")  # ASGI: a message may leave the key out
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the whole body once, then whatever the client sends next
    (e.g. the disconnect a streaming answer waits for)."""
    sent = False

    async def receive_again() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again
