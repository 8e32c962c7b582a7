"""What every request passes through besides the session: the language and the security
headers, as plain ASGI middleware.

Plain ASGI, not `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs the rest of
the app in a task of its own and copies the body and the answer through memory streams.
Measured under the journey load (bench/RESULTS.md §16), its two layers were a third of the
service's CPU, on every status callback Twilio posts.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smslink.web import i18n

#: No inline script or style, nothing from elsewhere, no framing: what a page can do is
#: what its own files say.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)

_SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


class LanguageMiddleware:
    """Speaks the language the session chose, else the browser's best match, for the rest
    of the request (a context variable; it must run after the session middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            session = scope.get("session") or {}
            accept_language = Headers(scope=scope).get("accept-language")
            i18n.use(i18n.negotiate(session.get("lang"), accept_language))
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """Adds the security headers to every answer that does not set its own, and forbids
    caching anything but the static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS:
                    headers.setdefault(name, value)
                if not cacheable:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
