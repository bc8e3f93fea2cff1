"""The workbench's HTTP API against the real server process, real Redis and real Kafka: every action, and every
refusal with its status and problem document, and nothing changed by a refused request."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from engine.worklist.feedback import DECISION_HEADER
from tests.fixtures.servers import read_topic

TEXT = "Follow-up visit. Type 2 diabetes mellitus, controlled. Essential hypertension. No asthma."


def _item_state(wb, item_id: str) -> str:
    """The item's hash and its place in every queue/lease set: what a refused request must leave as it was."""
    r, s = wb.store.r, wb.store
    fields = {k: v for k, v in r.hgetall(s.item_key(item_id)).items()}
    places = {k: r.zscore(k, item_id) for k in (s.queue_key("oldest"), s.queue_key("confidence"), s.queue_key("uncertain"),
                                                 s.leases_key, s.completed_key)}
    return repr((sorted(fields.items()), places, r.hlen(s.outbox_key)))


def _problem(resp, status: int, kind: str) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"].endswith("/" + kind) and body["status"] == status and body["detail"], body
    return body


def test_claim_next_decide_complete_publishes_the_feedback_bundle(workbench):
    wb = workbench
    with wb.client("alice", "coder") as alice:
        assert alice.post("/api/claims", json={}).status_code == 204  # empty queue
        wb.add_note("n1", "Encounter/api-1", TEXT, {"E11.9": ["Type 2 diabetes mellitus"], "I10": ["Essential hypertension"]})
        me = alice.get("/api/me").json()
        assert me["user"] == "alice" and me["coder"] and not me["supervisor"]
        queue = alice.get("/api/queue", params={"priority": "confidence"}).json()
        assert [i["item_id"] for i in queue["items"]] == ["Encounter/api-1"] and queue["counts"]["queued"] == 1
        item = alice.post("/api/claims", json={"priority": "oldest"}).json()
        assert item["item_id"] == "Encounter/api-1" and item["claimed_by"] == "alice" and item["status"] == "claimed"
        span = item["notes"][0]["suggestions"][0]["evidence"][0]
        assert TEXT[span["start"]:span["end"]] in ("Type 2 diabetes mellitus", "Essential hypertension")
        assert {c["code"]: c["threshold"] for c in item["suggested"]} == {"E11.9": 0.4, "I10": 0.4}
        assert alice.get("/api/queue").json()["mine"][0]["item_id"] == "Encounter/api-1"
        # the coder is the token's user: a client-supplied name is not even accepted
        _problem(alice.post("/api/items/Encounter/api-1/decisions", json={"coder": "mallory", "decisions": [{"code": "I10", "action": "accept"}]}),
                 422, "invalid-request")
        done = alice.post("/api/items/Encounter/api-1/decisions", json={"decisions": [
            {"code": "e119", "action": "accept"}, {"code": "I10", "action": "reject", "reason": "negated"},
            {"code": "J45.909", "action": "add", "reason": "missed-by-model"}]}).json()
        assert done["ready_to_complete"] and [a["code"] for a in done["added"]] == ["J45.909"]
        renewed = alice.post("/api/items/Encounter/api-1/renew").json()
        assert renewed["lease_expires_at"] >= item["lease_expires_at"]
        result = alice.post("/api/items/Encounter/api-1/complete")
        assert result.status_code == 200 and result.json()["published"] == 1
    records = read_topic(wb.kafka.bootstrap_servers, wb.kafka.feedback_topic, expected=1, timeout_s=30)
    assert len(records) == 1 and records[0].key == b"Encounter/api-1"
    decision = json.loads(dict(records[0].headers)[DECISION_HEADER])
    assert decision["coder"] == "alice"
    assert {(d["code"], d["action"], d["reason"]) for d in decision["decisions"]} == {
        ("E11.9", "accept", None), ("I10", "reject", "negated"), ("J45.909", "add", "missed-by-model")}
    bundle = json.loads(records[0].value)
    statuses = {e["resource"]["code"]["coding"][0]["code"]: e["resource"]["verificationStatus"]["coding"][0]["code"]
                for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"}
    assert statuses == {"E11.9": "confirmed", "I10": "refuted", "J45.909": "confirmed"}
    provenance = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"][0]
    assert provenance["agent"][0]["who"]["reference"] == "Practitioner/alice"


def test_requests_without_a_valid_token_are_refused_and_change_nothing(workbench, tmp_path):
    wb = workbench
    wb.add_note("n2", "Encounter/api-2", TEXT, {"I10": ["Essential hypertension"]})
    before = _item_state(wb, "Encounter/api-2")
    with wb.client() as anonymous:
        body = _problem(anonymous.post("/api/claims", json={"item_id": "Encounter/api-2"}), 401, "not-authenticated")
        assert "Bearer" in body["detail"]
        assert anonymous.post("/api/claims", json={}).headers["www-authenticate"].startswith("Bearer")
        for token, why in [
            ("not-a-jwt", "not valid"),
            (wb.server.token("alice", "coder", hours=-1), "expired"),
            (jwt.encode({"sub": "alice", "roles": ["coder"], "aud": "icd-coder-workbench", "iss": "urn:icd-coder:workbench-local",
                         "exp": time.time() + 60}, "a-shared-secret", algorithm="HS256"), "not valid"),
        ]:
            resp = anonymous.post("/api/claims", json={"item_id": "Encounter/api-2"}, headers={"Authorization": f"Bearer {token}"})
            assert why in _problem(resp, 401, "not-authenticated")["detail"]
        # a token signed by another key (another demo's key file)
        from engine.workbench.auth import mint_local_token, write_local_key

        other = mint_local_token(write_local_key(tmp_path / "other.pem"), "alice", ["coder"], "icd-coder-workbench")
        resp = anonymous.post("/api/claims", json={"item_id": "Encounter/api-2"}, headers={"Authorization": f"Bearer {other}"})
        assert "signature" in _problem(resp, 401, "not-authenticated")["detail"]
        # the page itself holds no data and loads without a token
        assert anonymous.get("/").status_code == 200 and anonymous.get("/login").status_code == 200
    assert _item_state(wb, "Encounter/api-2") == before


def test_refusals_say_why_and_change_nothing(workbench):
    wb = workbench
    wb.add_note("n3", "Encounter/api-3", TEXT, {"E11.9": ["Type 2 diabetes mellitus"], "I10": ["Essential hypertension"]})
    with wb.client("alice", "coder") as alice, wb.client("bob", "coder") as bob, wb.client("sue", "supervisor") as sue:
        # wrong role: a supervisor-only token cannot claim; a coder cannot read the evaluation or all claims
        before = _item_state(wb, "Encounter/api-3")
        _problem(sue.post("/api/claims", json={"item_id": "Encounter/api-3"}), 403, "wrong-role")
        _problem(alice.get("/api/evaluation"), 403, "wrong-role")
        _problem(alice.get("/api/claims"), 403, "wrong-role")
        assert _item_state(wb, "Encounter/api-3") == before

        assert alice.post("/api/claims", json={"item_id": "Encounter/api-3"}).status_code == 200
        alice.post("/api/items/Encounter/api-3/decisions", json={"decisions": [{"code": "E11.9", "action": "accept"}]})
        before = _item_state(wb, "Encounter/api-3")
        # someone else's claim: bob can neither claim, decide, complete, renew, release nor read its notes
        assert "alice" in _problem(bob.post("/api/claims", json={"item_id": "Encounter/api-3"}), 403, "claimed-by-another-coder")["detail"]
        _problem(bob.post("/api/items/Encounter/api-3/decisions", json={"decisions": [{"code": "I10", "action": "reject"}]}),
                 403, "claimed-by-another-coder")
        _problem(bob.post("/api/items/Encounter/api-3/complete"), 403, "claimed-by-another-coder")
        _problem(bob.post("/api/items/Encounter/api-3/renew"), 403, "claimed-by-another-coder")
        _problem(bob.post("/api/items/Encounter/api-3/release"), 403, "claimed-by-another-coder")
        _problem(bob.get("/api/items/Encounter/api-3/notes"), 403, "not-your-claim")
        # unknown code, a code that was not suggested (the pointer names the field), undecided codes, unknown item
        body = _problem(alice.post("/api/items/Encounter/api-3/decisions", json={"decisions": [
            {"code": "I10", "action": "reject"}, {"code": "X99.999", "action": "add"}]}), 422, "invalid-decision")
        assert body["errors"] == [{"pointer": "#/decisions/1/code", "detail": body["detail"]}] and "X99.999" in body["detail"]
        body = _problem(alice.post("/api/items/Encounter/api-3/decisions", json={"decisions": [{"code": "J45.909", "action": "accept"}]}),
                        422, "invalid-decision")
        assert body["errors"][0]["pointer"] == "#/decisions/0/code" and "not suggested" in body["detail"]
        body = _problem(alice.post("/api/items/Encounter/api-3/decisions", json={"decisions": [{"code": "I10", "action": "maybe"}]}),
                        422, "invalid-request")
        assert body["errors"][0]["pointer"] == "#/decisions/0/action"
        assert "I10" in _problem(alice.post("/api/items/Encounter/api-3/complete"), 409, "item-state-conflict")["detail"]
        _problem(alice.get("/api/items/Encounter/nope"), 404, "item-not-found")
        _problem(alice.get("/api/queue", params={"priority": "newest"}), 422, "invalid-request")
        assert _item_state(wb, "Encounter/api-3") == before
        alice.post("/api/items/Encounter/api-3/release")


def test_an_expired_lease_is_refused_and_a_supervisor_releases_a_claim(workbench):
    wb = workbench
    wb.add_note("n4", "Encounter/api-4", TEXT, {"I10": ["Essential hypertension"]})
    wb.add_note("n5", "Encounter/api-5", TEXT, {"I10": ["Essential hypertension"]})
    wb.store.claim("carol", 0.3, item_id="Encounter/api-4")  # carol's session dies: her lease runs out
    time.sleep(0.5)
    wb.store.reap_expired()  # what any next request does first: the item is back in the queue
    with wb.client("carol", "coder") as carol, wb.client("alice", "coder") as alice, wb.client("sue", "supervisor") as sue:
        before = _item_state(wb, "Encounter/api-4")
        assert "expired" in _problem(carol.post("/api/items/Encounter/api-4/decisions", json={"decisions": [{"code": "I10", "action": "accept"}]}),
                                     409, "lease-expired")["detail"]
        _problem(carol.post("/api/items/Encounter/api-4/complete"), 409, "lease-expired")
        _problem(carol.post("/api/items/Encounter/api-4/renew"), 409, "lease-expired")
        assert _item_state(wb, "Encounter/api-4") == before
        # a supervisor releases alice's claim; alice's next decision is refused
        alice.post("/api/claims", json={"item_id": "Encounter/api-5"})
        assert [c["claimed_by"] for c in sue.get("/api/claims").json()["items"] if c["item_id"] == "Encounter/api-5"] == ["alice"]
        released = sue.post("/api/items/Encounter/api-5/release").json()
        assert released["status"] == "queued" and released["claimed_by"] is None
        _problem(alice.post("/api/items/Encounter/api-5/decisions", json={"decisions": [{"code": "I10", "action": "accept"}]}),
                 409, "item-state-conflict")
        _problem(sue.post("/api/items/Encounter/api-5/release"), 409, "item-state-conflict")
        assert sue.get("/api/items/Encounter/api-5").json()["status"] == "queued"
        for item in ("Encounter/api-4", "Encounter/api-5"):  # leave the queue empty for the next module's tests
            alice.post("/api/claims", json={"item_id": item})
            alice.post(f"/api/items/{item}/decisions", json={"decisions": [{"code": "I10", "action": "accept"}]})
            assert alice.post(f"/api/items/{item}/complete").status_code == 200


def test_note_text_is_read_from_the_input_topic_and_a_changed_version_is_said_plainly(workbench):
    wb = workbench
    wb.add_note("n6", "Encounter/api-6", TEXT, {"I10": ["Essential hypertension"]})
    # the worklist refers to version 2, the input topic holds version 1 at that position
    wb.add_note("n7", "Encounter/api-6", TEXT, {"E11.9": ["Type 2 diabetes mellitus"]}, minutes=1)
    note7 = next(n for n in wb.store.get("Encounter/api-6").item.notes if n.document_reference.endswith("n7"))
    wb.add_note("n7", "Encounter/api-6", TEXT, {"E11.9": ["Type 2 diabetes mellitus"]}, minutes=1, version="2", publish=False)
    item = wb.store.get("Encounter/api-6").item
    stale = [n for n in item.notes if n.document_reference.endswith("n7")][0]
    assert stale.source is None  # published nowhere: no position
    with wb.client("alice", "coder") as alice:
        alice.post("/api/claims", json={"item_id": "Encounter/api-6"})
        notes = {n["document_reference"]: n for n in alice.get("/api/items/Encounter/api-6/notes").json()["notes"]}
        assert notes["DocumentReference/n6"]["status"] == "ok" and notes["DocumentReference/n6"]["text"] == TEXT
        assert notes["DocumentReference/n7"]["status"] == "unavailable" and "does not say where" in notes["DocumentReference/n7"]["message"]
        alice.post("/api/items/Encounter/api-6/release")
    # version 2 in the worklist, version 1 at the recorded position: the text is shown, the mismatch said
    from engine.workbench.texts import KafkaNoteTexts
    from schemas.settings import EngineSettings

    texts = KafkaNoteTexts(EngineSettings(kafka=wb.kafka))
    try:
        got = texts.fetch(note7.model_copy(update={"document_version": "2"}))
    finally:
        texts.close()
    assert got.status == "version_mismatch" and got.text == TEXT and "version 1" in got.message and "version 2" in got.message


def test_code_search_openapi_and_unknown_routes(workbench):
    with workbench.client("alice", "coder") as alice:
        assert alice.get("/api/codes", params={"q": "e11.9"}).json()["results"][0]["code"] == "E11.9"
        hits = alice.get("/api/codes", params={"q": "essential hypert"}).json()["results"]
        assert hits[0]["code"] == "I10" and "hypertension" in hits[0]["display"].lower()
        spec = alice.get("/openapi.json").json()
        assert {"/api/claims", "/api/items/{item_id}/decisions", "/api/items/{item_id}/complete", "/api/evaluation"} <= set(spec["paths"])
        assert "application/problem+json" in spec["paths"]["/api/claims"]["post"]["responses"]["403"]["content"]
        _problem(alice.get("/api/nothing-here"), 404, "not-found")


def test_access_log_names_routes_and_items_only(workbench):
    logs = workbench.server.logs()
    access = [json.loads(line) for line in logs.splitlines() if '"engine.workbench.access"' in line]
    assert any(a.get("item_id") == "Encounter/api-1" and a["route"].endswith("/complete") for a in access)
    for a in access:
        assert set(a) <= {"ts", "level", "logger", "msg", "method", "route", "status", "ms", "item_id"}, a
    for secret in ("alice", "essential hypert", "Type 2 diabetes", "Bearer", "127.0.0.1:"):
        assert secret not in "\n".join(json.dumps(a) for a in access), secret


def test_the_supervisor_view_has_the_figures_of_evaluate_feedback(workbench, cli, monkeypatch, tmp_path):
    from engine.audit.records import audit_record
    from engine.infra.producer import make_producer, send_all

    wb = workbench
    notes = [wb.add_note("n8", "Encounter/api-8", TEXT, {"E11.9": ["Type 2 diabetes mellitus"], "I10": ["Essential hypertension"]}),
             wb.add_note("n9", "Encounter/api-9", TEXT, {"I10": ["Essential hypertension"]})]
    producer = make_producer(wb.kafka, "tests")
    send_all(producer, [(wb.kafka.audit_topic, n.note.reference.encode(), audit_record(n, False).model_dump_json().encode(), []) for n in notes])
    producer.close()
    with wb.client("alice", "coder") as alice, wb.client("sue", "supervisor") as sue:
        for item, sent in (("Encounter/api-8", [{"code": "E11.9", "action": "accept"}, {"code": "I10", "action": "reject"},
                                                {"code": "E78.5", "action": "add"}]),
                           ("Encounter/api-9", [{"code": "I10", "action": "accept"}])):
            alice.post("/api/claims", json={"item_id": item})
            alice.post(f"/api/items/{item}/decisions", json={"decisions": sent})
            assert alice.post(f"/api/items/{item}/complete").status_code == 200
        served = sue.get("/api/evaluation", params={"refresh": "true"}).json()
    for name, value in wb.env.items():
        if name.startswith("ICDCODER_"):
            monkeypatch.setenv(name, value)
    assert cli("engine", "evaluate-feedback", "--out", str(tmp_path)).returncode == 0
    written = json.loads((tmp_path / "feedback_eval.json").read_text())
    assert served["versions"] == written["versions"] and served["decided_items"] == written["decided_items"]
    overall = served["versions"][0]["overall"]
    # api-8: E11.9 TP, I10 FP (rejected), E78.5 FN (added); api-9: I10 TP -> precision 2/3, recall 2/3, acceptance 2/3
    assert (overall["tp"], overall["fp"], overall["fn"]) == (2, 1, 1) and overall["acceptance_rate"] == pytest.approx(2 / 3)
