"""The workbench application: ``create_app(services)`` wires the API, the page, the problem handlers and the access
log; ``build_services(settings)`` makes what it runs on from the ``ICDCODER_*`` settings (docs/workbench.md).

The page (``/``, ``/login``) and its static files carry no data and need no token; everything under ``/api``
does. Access log lines carry method, route template, the item id, status and time: never a query string
(code searches), a user, a client address or any text.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from engine.infra.redis import redis_client
from engine.workbench import problems
from engine.workbench.api import Services, router
from engine.workbench.auth import TokenVerifier
from engine.workbench.codes import CodeIndex
from engine.workbench.feedback import FeedbackSender, SupervisorEvaluation
from engine.workbench.texts import note_texts
from engine.worklist.items import PRIORITY_HELP
from engine.worklist.store import WorklistStore
from schemas.envelopes import DecisionReason
from schemas.settings import EngineSettings, SettingsError

HERE = Path(__file__).parent
access_log = logging.getLogger("engine.workbench.access")
_HEADERS = [  # the page loads only its own files; API answers (PHI) are never cached
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def build_services(settings: EngineSettings) -> Services:
    """Everything the app runs on, from settings; SettingsError names what is missing."""
    wb = settings.workbench
    problems_found = wb.problems()
    if problems_found:
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems_found))
    try:
        verifier = TokenVerifier.from_settings(wb)
    except (OSError, ValueError) as err:
        raise SettingsError(f"invalid configuration:\n  {err}") from None
    store = WorklistStore(redis_client(settings.redis), settings.redis.key_prefix)
    return Services(settings=settings, store=store, verifier=verifier, texts=note_texts(settings),
                    sender=FeedbackSender(settings, store), evaluation=SupervisorEvaluation(settings, wb.evaluation_cache_s),
                    codes=CodeIndex())


class AccessLog:
    """ASGI middleware: one JSON line per request (``engine.observability.JsonFormatter``) and the headers above."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers += _HEADERS
                if scope["path"].startswith("/api/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            fields = {"method": scope["method"], "route": getattr(route, "path", None) or "(unmatched)", "status": status["code"],
                      "ms": round(1000 * (time.perf_counter() - started), 1)}
            item_id = (scope.get("path_params") or {}).get("item_id")
            if item_id:
                fields["item_id"] = item_id
            access_log.info("request", extra={"fields": fields})


def create_app(services: Services, background_drain_s: float | None = 15.0) -> FastAPI:
    """The app on ``services``; ``background_drain_s``: how often a failed publish is retried (None: never)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if background_drain_s:
            services.sender.start_background(background_drain_s)
        try:
            yield
        finally:
            services.sender.close()
            services.texts.close()

    app = FastAPI(title="icd-coder workbench", version="1", docs_url=None, redoc_url=None, lifespan=lifespan,  # Swagger UI: CDN
                  description="The coding worklist over HTTP: claim, decide, complete. Bearer JWT on every /api route; "
                              "errors are RFC 9457 problem details. docs/workbench.md.")
    app.state.services = services
    app.add_middleware(AccessLog)
    problems.install(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    page = {"auth_mode": services.settings.workbench.auth, "priorities": PRIORITY_HELP,
            "default_priority": services.settings.worklist_priority, "reasons": list(DecisionReason.__args__)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def workbench_page(request: Request):
        return templates.TemplateResponse(request, "workbench.html", page)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request):
        return templates.TemplateResponse(request, "login.html", page)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"ok": True}

    @app.get("/readyz", include_in_schema=False)
    def readyz():
        try:
            ready = bool(services.store.r.ping())
        except Exception:  # noqa: BLE001 - not ready, whatever the reason
            ready = False
        return JSONResponse({"redis": ready}, status_code=200 if ready else 503)

    return app
