"""The service: one FastAPI application with the pages, the REST API, the run executor and
the webhook dispatcher, over the same application layer as the command line.

Built by `create_app` from a `ServeOptions`; `smslink serve` runs it on uvicorn. Every
request passes, in order: the security headers, Twilio's status callback receiver (which
answers its own path), the session cookie, the language. Pages
and API share the roles and the rules; they differ in how they answer a refusal (a page
shows the problem beside its field or redirects to sign in; the API answers one JSON shape).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from smslink.app import Config, Smslink
from smslink.domain.errors import SmslinkError
from smslink.web.callbacks import (
    StatusCallbackReceiver,
    callback_batches,
    retry_early_callbacks,
)
from smslink.web.errors import api_error, error_response
from smslink.web.middleware import LanguageMiddleware, SecurityHeadersMiddleware
from smslink.web.pages.common import page_csrf_refused, page_forbidden, page_not_found
from smslink.web.routes import include_routes
from smslink.web.runner import RunExecutor
from smslink.web.session import SESSION_HOURS, CsrfRefused, Forbidden, NotSignedIn, SignInBrake
from smslink.web.webhooks import WebhookDispatcher

log = logging.getLogger("smslink.web")

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    """How the service runs."""

    config: Config
    #: Mark session cookies Secure (sent over HTTPS only). True whenever the service is
    #: reachable from other machines, where a TLS-terminating proxy is expected in front.
    secure_cookies: bool = False
    #: Resume the service's own runs that were interrupted when it last stopped.
    resume_runs: bool = True
    #: Largest audience upload, in bytes.
    max_upload_bytes: int = 200 * 1024 * 1024
    #: Served with `--demo`: the new-run page offers the sample audience to download.
    demo: bool = False


def create_app(options: ServeOptions) -> FastAPI:
    """The service over the configured store (opened here, closed when the app stops)."""
    smslink = Smslink.open(options.config)
    executor = RunExecutor(smslink)
    dispatcher = WebhookDispatcher(smslink.webhooks)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if options.resume_runs:
            resumed = executor.resume_interrupted()
            if resumed:
                log.info("resumed runs %s", resumed)
        dispatcher.start()
        stop_retries = asyncio.Event()
        retries = asyncio.create_task(
            retry_early_callbacks(smslink, stop_retries), name="smslink-early-callbacks"
        )
        try:
            yield
        finally:
            stop_retries.set()
            await asyncio.gather(retries, return_exceptions=True)
            await app.state.callback_batches.drained()
            await dispatcher.shutdown()
            await executor.shutdown()
            smslink.close()

    app = FastAPI(
        title="smslink",
        summary="Personalised SMS through Twilio, with every recipient's delivery status.",
        lifespan=lifespan,
        docs_url=None,  # the API's own page at /docs (no script from elsewhere)
        redoc_url=None,
    )
    app.state.smslink = smslink
    app.state.executor = executor
    app.state.brake = SignInBrake()
    app.state.options = options
    app.state.callback_batches = callback_batches(smslink)

    # Starlette runs the middleware added last first: the security headers wrap
    # everything, Twilio's status callbacks are answered before the session (they have
    # none), and the session is there when the language looks.
    app.add_middleware(LanguageMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=smslink.signing_key("web-sessions").hex(),
        session_cookie="smslink_session",
        max_age=SESSION_HOURS * 3600,
        same_site="lax",
        https_only=options.secure_cookies,
    )
    app.add_middleware(StatusCallbackReceiver, batches=app.state.callback_batches)
    app.add_middleware(SecurityHeadersMiddleware)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _: Exception) -> Response:
        if _is_api(request):
            return api_error(401, "not_signed_in", "sign in, or send an API token")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, _: Exception) -> Response:
        if _is_api(request):
            return api_error(403, "forbidden", "your role may not do this")
        return page_forbidden(request)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _: Exception) -> Response:
        if _is_api(request):
            return api_error(403, "csrf", "the form's CSRF token is missing or wrong")
        return page_csrf_refused(request)

    @app.exception_handler(SmslinkError)
    async def smslink_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, SmslinkError)
        return error_response(request, error, api=_is_api(request))

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: Exception) -> Response:
        """A body or parameter of the wrong shape: the one error shape, by field."""
        assert isinstance(error, RequestValidationError)
        problems = [
            {
                "field": ".".join(str(part) for part in item.get("loc", ())[1:]) or "body",
                "message": str(item.get("msg", "invalid")),
                "remedy": None,
            }
            for item in error.errors()
        ]
        return api_error(422, "invalid_input", "the request is malformed", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: Exception) -> Response:
        """Starlette's own refusals (no such path, a method a path does not take) in the
        API's one shape, and as a page elsewhere."""
        assert isinstance(error, StarletteHTTPException)
        if _is_api(request) or request.url.path.startswith("/openapi"):
            kinds = {404: "not_found", 405: "method_not_allowed", 400: "invalid_input"}
            kind = kinds.get(error.status_code, "error")
            return api_error(error.status_code, kind, str(error.detail))
        return page_not_found(request, error.status_code)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    include_routes(app)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"
