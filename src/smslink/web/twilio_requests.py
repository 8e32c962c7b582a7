"""What the receivers of Twilio's webhooks (status callbacks, incoming messages) share: the
body read no further than a bound (the journey API reads its JSON the same way), and the
URL as Twilio signed it."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request


async def capped_body(request: Request, max_bytes: int) -> bytes | None:
    """The request body, or None once it grows past `max_bytes` (the rest is never read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def requested_url(request: Request) -> str:
    """The URL as the client wrote it: the path as sent (a connection "my shop" stays
    `my%20shop`, as Twilio signed it, where Starlette's `request.url` decodes it) and the
    query, with the scheme and host the service sees."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else quote(request.url.path)
    query = request.url.query
    return f"{request.url.scheme}://{request.url.netloc}{path}" + (f"?{query}" if query else "")
