"""``python -m engine code``: NDJSON/Bundle files in, one Bundle per note out, errors with file:line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.__main__ import COMMANDS
from engine.pipeline.fhir_bundle import bundle_class
from schemas.cli import main
from tests.fixtures.docref import collection_bundle, document_reference
from tests.fixtures.engine_model import build_model_repository

NOTE = "Seen by Dr. Bartholomew Quigley. The patient has a history of hypertension. Denies chest pain."


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("keyword_repo")
    build_model_repository(path)
    return path


@pytest.fixture(autouse=True)
def _embedded_backend(monkeypatch):
    monkeypatch.delenv("ICDCODER_TRITON_URL", raising=False)


def code(*argv: str) -> int:
    return main("python -m engine", "", COMMANDS, ["code", *map(str, argv)])


def test_ndjson_and_bundles_with_errors(tmp_path, repo, capsys):
    notes = tmp_path / "notes.ndjson"
    lines = [
        json.dumps(document_reference(NOTE, "a")),
        "{this is not json",
        "",
        json.dumps(document_reference(NOTE, "c", subject=None)),
        json.dumps(document_reference("Asthma and migraine.", "d")),
    ]
    notes.write_text("\n".join(lines) + "\n")
    bundles = tmp_path / "export.ndjson"
    bundle = collection_bundle([document_reference("Type 2 diabetes.", "e"), {"resourceType": "Patient", "id": "p-1"}, document_reference(NOTE, "f", content_type="application/pdf")])
    bundles.write_text(json.dumps(bundle) + "\n")
    out, errors = tmp_path / "out.ndjson", tmp_path / "errors.ndjson"

    status = code(notes, bundles, "--out", out, "--errors", errors, "--model-repository", repo, "--batch-size", "2", "--no-progress")
    assert status == 1  # some notes failed
    written = [json.loads(line) for line in out.read_text().splitlines()]
    refs = [b["entry"][-1]["resource"]["entity"][0]["what"]["reference"] for b in written]
    assert refs == ["DocumentReference/a/_history/1", "DocumentReference/d/_history/1", "DocumentReference/e/_history/1"]
    for b in written:
        bundle_class("R4").model_validate(b)
    rows = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [(r["file"], r["line"], r["entry"], r["reason"]) for r in rows] == [
        (str(notes), 2, None, "not_json"),
        (str(notes), 4, None, "no_subject"),
        (str(bundles), 1, 2, "unsupported_content"),
    ]
    err = capsys.readouterr().err
    assert f"{notes}:2: not_json" in err and f"{bundles}:1 entry 2: unsupported_content" in err
    assert "coded 3 notes" in err and "3 failed" in err and "1 Patient" in err
    assert "Quigley" not in err and "Quigley" not in errors.read_text()


def test_pretty_printed_resource_and_reproducible_output(tmp_path, repo):
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(document_reference(NOTE, "pretty", fhir_version="R5"), indent=2))
    outs = []
    for i in range(2):
        out = tmp_path / f"out{i}.ndjson"
        args = (doc, "--out", out, "--model-repository", repo, "--fhir-version", "R5", "--recorded-at", "2026-11-24T23:00:00Z", "--no-progress")
        assert code(*args) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") == 1
    bundle = json.loads(outs[0])
    assert bundle["entry"][0]["resource"]["code"]["coding"][0]["code"] == "I10"
    assert bundle["entry"][-1]["resource"]["recorded"] == "2026-11-24T23:00:00Z"


def test_user_errors(tmp_path, repo, capsys):
    doc = tmp_path / "doc.ndjson"
    doc.write_text(json.dumps(document_reference(NOTE)) + "\n")
    assert code(doc, "--model-repository", tmp_path / "nowhere") == 2
    assert "cannot load model" in capsys.readouterr().err
    assert code(tmp_path / "missing.ndjson", "--model-repository", repo) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        code(doc, "--recorded-at", "2026-01-01T00:00:00")  # no zone


def test_real_entry_point_writes_stdout(tmp_path, repo):
    doc = tmp_path / "doc.ndjson"
    doc.write_text(json.dumps(document_reference(NOTE)) + "\n")
    env = {"PATH": "/usr/bin:/bin", "ICDCODER_MODEL_REPOSITORY": str(repo)}
    proc = subprocess.run([sys.executable, "-m", "engine", "code", str(doc)], capture_output=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["type"] == "transaction"
    assert b"coded 1 notes" in proc.stderr


def _nested_extension(levels: int) -> dict:
    ext: dict = {"url": "https://example.org/x", "valueString": "v"}
    for _ in range(levels):
        ext = {"url": "https://example.org/x", "extension": [ext]}
    return ext


def test_deeply_nested_input_is_an_error_row_and_the_good_notes_are_coded(tmp_path, repo, capsys):
    """No input ends the run early: a 200-level nested extension and a 5,000-level array (RecursionError on
    main), a line too long for the limit, and a malformed one each become an error row; the notes around
    them are coded."""
    deep_doc = {**document_reference(NOTE, "deep"), "extension": [_nested_extension(200)]}
    lines = [
        json.dumps(document_reference(NOTE, "a")),
        json.dumps(deep_doc),
        "[" * 5000 + "]" * 5000,
        json.dumps(collection_bundle([document_reference(NOTE, "b"), {"resourceType": "Basic", "id": "x", "extension": [_nested_extension(300)]}])),
        json.dumps(document_reference("Asthma.", "c")),
    ]
    notes = tmp_path / "notes.ndjson"
    notes.write_text("\n".join(lines) + "\n")
    out, errors = tmp_path / "out.ndjson", tmp_path / "errors.ndjson"
    status = code(notes, "--out", out, "--errors", errors, "--model-repository", repo, "--batch-size", "2", "--no-progress")
    assert status == 1
    ids = [json.loads(b)["entry"][-1]["resource"]["entity"][0]["what"]["reference"] for b in out.read_text().splitlines()]
    assert ids == ["DocumentReference/a/_history/1", "DocumentReference/c/_history/1"]
    rows = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rows] == [(2, "too_deep"), (3, "too_deep"), (4, "too_deep")]
    assert "Traceback" not in capsys.readouterr().err


def test_lines_over_the_size_limit_are_error_entries(tmp_path):
    from schemas.fhir.ndjson import read_resources

    path = tmp_path / "big.ndjson"
    path.write_bytes(b'{"resourceType": "Basic", "id": "a"}\n' + b'{"x": "' + b"y" * 5000 + b'"}\n' + b'{"resourceType": "Basic", "id": "b"}\n')
    entries = list(read_resources(path, max_line_bytes=1000))
    assert [(e.line, e.kind if e.error is None else e.error.reason) for e in entries] == [(1, "Basic"), (2, "too_large"), (3, "Basic")]


def test_document_status_current_superseded_entered_in_error(tmp_path, repo, capsys):
    """current is coded; superseded is skipped; entered-in-error is never coded and withdraws what the
    document produced: its Conditions again, same identifiers, verificationStatus entered-in-error."""
    v1 = document_reference(NOTE, "s1")
    retract = {**document_reference(NOTE, "s1"), "status": "entered-in-error", "meta": {"versionId": "2"}}
    old = {**document_reference("Asthma.", "s2"), "status": "superseded"}
    never_coded = {**document_reference(NOTE, "s3"), "status": "entered-in-error"}
    notes = tmp_path / "notes.ndjson"
    notes.write_text("\n".join(json.dumps(d) for d in (v1, old, retract, never_coded)) + "\n")
    out, errors = tmp_path / "out.ndjson", tmp_path / "errors.ndjson"
    assert code(notes, "--out", out, "--errors", errors, "--model-repository", repo, "--batch-size", "8", "--no-progress") == 0
    coded, withdrawal, empty = [json.loads(line) for line in out.read_text().splitlines()]
    conditions = [e for e in coded["entry"] if e["resource"]["resourceType"] == "Condition"]
    withdrawn = [e for e in withdrawal["entry"] if e["resource"]["resourceType"] == "Condition"]
    assert conditions and len(withdrawn) == len(conditions)
    for before, after in zip(sorted(conditions, key=lambda e: e["fullUrl"]), withdrawn):
        assert after["fullUrl"] == before["fullUrl"] and after["request"] == before["request"]
        assert after["resource"]["identifier"] == before["resource"]["identifier"]
        assert after["resource"]["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
        assert "clinicalStatus" not in after["resource"]
    assert withdrawal["entry"][-1]["resource"]["activity"]["coding"][0]["code"] == "NULLIFY"
    bundle_class("R4").model_validate(withdrawal)
    assert empty["entry"] == []  # nothing was coded for s3: nothing to withdraw
    rows = [json.loads(line) for line in errors.read_text().splitlines()]
    assert rows == [{"file": str(notes), "line": 2, "entry": None, "reason": "superseded", "skipped": True}]
    assert "coded 1 notes" in capsys.readouterr().err
