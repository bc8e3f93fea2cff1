"""Errors as RFC 9457 problem details (``application/problem+json``): a stable ``type`` URI per kind of
refusal, a ``title``, the HTTP ``status``, a ``detail`` a person can act on, and ``errors`` naming the field at
fault as a JSON pointer into the request body (``#/decisions/1/code``) or the parameter (``query/priority``).

Details never quote note text; the worklist's own messages name items and codes only.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.worklist.store import WorklistError

PROBLEM_BASE = "https://icd-coder.org/problems/"
MEDIA_TYPE = "application/problem+json"

# WorklistError.kind -> (HTTP status, problem type, title)
_WORKLIST = {
    "invalid": (422, "invalid-decision", "The worklist refused the request"),
    "not_found": (404, "item-not-found", "No such worklist item"),
    "forbidden": (403, "claimed-by-another-coder", "Another coder holds this item"),
    "expired": (409, "lease-expired", "Your lease on this item expired"),
    "conflict": (409, "item-state-conflict", "The item's state does not allow this"),
}


class Problem(Exception):
    """Raise from an endpoint to answer with a problem document."""

    def __init__(self, status: int, kind: str, title: str, detail: str, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.errors = errors or []
        self.headers = headers or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": PROBLEM_BASE + self.kind, "title": self.title, "status": self.status, "detail": self.detail}
        if instance:
            out["instance"] = instance
        if self.errors:
            out["errors"] = self.errors
        return out


def field_error(pointer: str, detail: str) -> dict[str, str]:
    return {"pointer": pointer, "detail": detail}


def from_worklist(err: WorklistError, pointer: str | None = None) -> Problem:
    status, kind, title = _WORKLIST.get(err.kind, _WORKLIST["invalid"])
    return Problem(status, kind, title, str(err), [field_error(pointer, str(err))] if pointer else None)


def _pointer(loc: tuple) -> str:
    """FastAPI's error location -> a JSON pointer into the body, or ``query/<name>`` / ``path/<name>``."""
    where, *rest = loc or ("body",)
    if where == "body":
        return "#/" + "/".join(str(p) for p in rest)
    return f"{where}/" + "/".join(str(p) for p in rest)


def _respond(request: Request, problem: Problem) -> JSONResponse:
    return JSONResponse(problem.body(request.url.path), status_code=problem.status, media_type=MEDIA_TYPE,
                        headers={**problem.headers, "Cache-Control": "no-store"})


def install(app: FastAPI) -> None:
    """Every error the app can answer becomes a problem document: our own, request validation, unknown routes."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return _respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        # the message and the location only: pydantic's "input" would echo what was sent
        errors = [field_error(_pointer(tuple(e.get("loc", ()))), e.get("msg", "invalid")) for e in exc.errors()]
        where = ", ".join(e["pointer"] for e in errors)
        return _respond(request, Problem(422, "invalid-request", "The request is not valid", f"invalid field(s): {where}", errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return _respond(request, Problem(exc.status_code, kind, str(exc.detail), f"{request.method} {request.url.path}: {exc.detail}",
                                         headers=dict(exc.headers or {})))
