"""The workbench's HTTP API under ``/api``, a thin layer over ``engine.worklist.store.WorklistStore``: claims,
leases, decisions and completion are the store's (Lua-atomic claims, WATCH/MULTI writes, refusals that change
nothing); this module adds who may ask (``auth``), the HTTP shape and the problem documents (``problems``).

Every route needs a bearer token. The coder on a claim or decision is the token's user. Item ids are FHIR
references (``Encounter/123``) and appear in paths as they are.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import redis
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from engine.workbench.auth import AuthError, Principal, TokenVerifier
from engine.workbench.codes import CodeIndex
from engine.workbench.feedback import FeedbackSender, SupervisorEvaluation
from engine.workbench.problems import Problem, from_worklist
from engine.workbench.texts import NoteTexts
from engine.workbench.views import item_detail, item_summary
from engine.worklist.decisions import parse_decision_list
from engine.worklist.feedback import decision_bundle
from engine.worklist.items import PRIORITIES, Priority
from engine.worklist.store import WorklistError, WorklistStore
from schemas.envelopes import DecisionReason
from schemas.errors import TransientError
from schemas.icd10cm import normalise
from schemas.settings import EngineSettings


@dataclass
class Services:
    settings: EngineSettings
    store: WorklistStore
    verifier: TokenVerifier
    texts: NoteTexts
    sender: FeedbackSender
    evaluation: SupervisorEvaluation
    codes: CodeIndex

    @property
    def lease_s(self) -> float:
        return self.settings.workbench.lease_s or self.settings.worklist_lease_s


class ProblemDoc(BaseModel):
    """RFC 9457 problem details (application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list, description="each field at fault: JSON pointer and what is wrong")


_PROBLEMS = {s: {"model": ProblemDoc, "content": {"application/problem+json": {}}} for s in (401, 403, 404, 409, 422, 503)}
router = APIRouter(prefix="/api", responses=_PROBLEMS)


def services(request: Request) -> Services:
    return request.app.state.services


def current_user(request: Request, svc: Services = Depends(services)) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="icd-coder-workbench"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "not-authenticated", "Not authenticated", "send Authorization: Bearer <token> (sign in first)", headers=challenge)
    try:
        return svc.verifier.verify(token.strip())
    except AuthError as err:
        kind = {401: "not-authenticated", 403: "not-a-coder-identity", 503: "identity-provider-unavailable"}[err.status]
        raise Problem(err.status, kind, "Not authenticated" if err.status == 401 else "Cannot accept this identity", str(err),
                      headers={**challenge, "WWW-Authenticate": challenge["WWW-Authenticate"] + ', error="invalid_token"'}
                      if err.status == 401 else None) from None


def _role(which: Literal["coder", "supervisor"]):
    def check(user: Principal = Depends(current_user), svc: Services = Depends(services)) -> Principal:
        wb = svc.settings.workbench
        role = wb.coder_role if which == "coder" else wb.supervisor_role
        if role not in user.roles:
            raise Problem(403, "wrong-role", "Not allowed for your role", f"this needs the {role!r} role; your token has "
                          f"{', '.join(sorted(user.roles)) or 'no roles'}")
        return user
    return check


coder = _role("coder")
supervisor = _role("supervisor")


def any_role(user: Principal = Depends(current_user), svc: Services = Depends(services)) -> Principal:
    wb = svc.settings.workbench
    if not user.roles & {wb.coder_role, wb.supervisor_role}:
        raise Problem(403, "wrong-role", "Not allowed for your role", f"this needs the {wb.coder_role!r} or {wb.supervisor_role!r} role")
    return user


@contextmanager
def worklist_errors(pointer_for=lambda err: None):
    """The store's refusals and outages as problem documents."""
    try:
        yield
    except WorklistError as err:
        raise from_worklist(err, pointer_for(err)) from None
    except (redis.ConnectionError, redis.TimeoutError) as err:
        raise Problem(503, "worklist-unavailable", "The worklist is unavailable", f"Redis cannot be reached ({type(err).__name__}); try again") from None


# -- requests ---------------------------------------------------------------------------------------------

class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: Priority | None = Field(None, description="which queue order to take the next item from (default: the engine's setting)")
    item_id: str | None = Field(None, max_length=256, description="claim this item instead of the next one")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=16, description="an ICD-10-CM code (normalised: e119 -> E11.9)")
    action: Literal["accept", "reject", "add"]
    reason: DecisionReason | None = None


class DecideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decisions: list[DecisionIn] = Field(min_length=1, max_length=200)


# -- routes -----------------------------------------------------------------------------------------------

@router.get("/me", summary="who the token says you are")
def me(user: Principal = Depends(current_user), svc: Services = Depends(services)) -> dict[str, Any]:
    wb = svc.settings.workbench
    return {"user": user.user, "roles": sorted(user.roles), "coder": wb.coder_role in user.roles,
            "supervisor": wb.supervisor_role in user.roles, "lease_s": svc.lease_s, "priorities": list(PRIORITIES),
            "default_priority": svc.settings.worklist_priority}


@router.get("/queue", summary="queued items in priority order, counts, and the items you hold")
def queue(priority: Priority | None = None, limit: int = Query(20, ge=1, le=200), user: Principal = Depends(any_role),
          svc: Services = Depends(services)) -> dict[str, Any]:
    priority = priority or svc.settings.worklist_priority
    with worklist_errors():
        items = svc.store.list_items("queued", priority, limit)
        held = [v for v in svc.store.list_items("claimed", priority, 10_000) if v.item.claimed_by == user.user]
        return {"priority": priority, "counts": svc.store.counts(), "items": [item_summary(v) for v in items],
                "mine": [item_summary(v) for v in held]}


@router.post("/claims", summary="claim the next item of a queue (or a named one)", responses={204: {"description": "the queue is empty"}})
def claim(body: ClaimRequest, user: Principal = Depends(coder), svc: Services = Depends(services)):
    with worklist_errors():
        view = svc.store.claim(user.user, svc.lease_s, body.priority or svc.settings.worklist_priority, body.item_id)
    if view is None:
        return Response(status_code=204)
    return item_detail(view)


@router.get("/claims", summary="every claimed item with its holder and lease (supervisors)")
def claims(user: Principal = Depends(supervisor), svc: Services = Depends(services)) -> dict[str, Any]:
    with worklist_errors():
        return {"items": [item_summary(v) for v in svc.store.list_items("claimed", "oldest", 10_000)]}


@router.get("/codes", summary="search the ICD-10-CM code set by code prefix or title words")
def codes(q: str = Query(..., min_length=1, max_length=100), limit: int = Query(20, ge=1, le=100), user: Principal = Depends(any_role),
          svc: Services = Depends(services)) -> dict[str, Any]:
    return {"query": q, "results": [h.__dict__ for h in svc.codes.search(q, limit)]}


@router.get("/evaluation", summary="suggestions vs coders' decisions per model version and code (supervisors)")
def evaluation(refresh: bool = False, user: Principal = Depends(supervisor), svc: Services = Depends(services)) -> dict[str, Any]:
    try:
        return svc.evaluation.figures(refresh)
    except (ValueError, TransientError) as err:  # a topic that does not exist yet, a broker that is down
        raise Problem(503, "evaluation-unavailable", "The evaluation cannot be computed now", str(err)) from None


# Routes on an item: the suffixed ones first, since an item id contains "/".

@router.get("/items/{item_id:path}/notes", summary="the item's note texts, read from the hospital's systems now")
def notes(item_id: str, user: Principal = Depends(any_role), svc: Services = Depends(services)) -> dict[str, Any]:
    with worklist_errors():
        view = svc.store.get(item_id)
    if view.item.claimed_by != user.user and svc.settings.workbench.supervisor_role not in user.roles:
        raise Problem(403, "not-your-claim", "Claim the item to read its notes",
                      f"item {item_id!r} is not claimed by you: note texts are shown to the coder who holds the item (and supervisors)")
    return {"item_id": item_id, "notes": [svc.texts.fetch(n).as_dict() for n in view.item.notes]}


@router.post("/items/{item_id:path}/renew", summary="extend your lease on an item you hold")
def renew(item_id: str, user: Principal = Depends(coder), svc: Services = Depends(services)) -> dict[str, Any]:
    with worklist_errors():
        return item_detail(svc.store.renew(item_id, user.user, svc.lease_s))


@router.post("/items/{item_id:path}/release", summary="give an item back to the queue (your own; supervisors: anyone's)")
def release(item_id: str, user: Principal = Depends(any_role), svc: Services = Depends(services)) -> dict[str, Any]:
    is_supervisor = svc.settings.workbench.supervisor_role in user.roles
    if not is_supervisor and svc.settings.workbench.coder_role not in user.roles:
        raise Problem(403, "wrong-role", "Not allowed for your role", "releasing needs the coder or supervisor role")
    with worklist_errors():
        return item_summary(svc.store.release(item_id, user.user, supervisor=is_supervisor))


@router.post("/items/{item_id:path}/decisions", summary="accept or reject suggested codes, add missing ones (optional reason)")
def decide(item_id: str, body: DecideRequest, user: Principal = Depends(coder), svc: Services = Depends(services)) -> dict[str, Any]:
    def pointer_for(err: WorklistError) -> str | None:
        if err.code is None:
            return None
        at = [i for i, d in enumerate(body.decisions) if d.code == err.code or normalise(d.code) == normalise(err.code)]
        return f"#/decisions/{at[-1]}/code" if at else None

    with worklist_errors(pointer_for):
        decisions = parse_decision_list([(d.code, d.action, d.reason) for d in body.decisions])
        return item_detail(svc.store.decide(item_id, user.user, decisions))


@router.post("/items/{item_id:path}/complete", summary="close the item and publish its decisions (FHIR) to the feedback topic")
def complete(item_id: str, response: Response, user: Principal = Depends(coder), svc: Services = Depends(services)) -> dict[str, Any]:
    fhir_version = svc.settings.fhir_version
    with worklist_errors():
        decision = svc.store.complete(item_id, user.user, lambda d, item: decision_bundle(d, item, fhir_version))
    out = {"item_id": item_id, "decision": decision.model_dump(mode="json"), "topic": svc.settings.kafka.feedback_topic}
    try:
        out["published"] = svc.sender.drain()
    except TransientError as err:
        response.status_code = 202
        out.update(published=0, message=f"completed; publishing to the feedback topic failed ({err}): the decision waits in the "
                   "outbox and is published as soon as the broker is back")
    return out


@router.get("/items/{item_id:path}", summary="an item with its codes, evidence offsets and the decisions so far")
def item(item_id: str, user: Principal = Depends(any_role), svc: Services = Depends(services)) -> dict[str, Any]:
    with worklist_errors():
        return item_detail(svc.store.get(item_id))

