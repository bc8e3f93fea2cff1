"""``python -m engine code`` on HL7 v2 archives: messages split by blank lines or at each MSH, CR/LF/CRLF
segment ends, MLLP frames and batch envelopes dropped; coded like FHIR input, errors with file:line."""

from __future__ import annotations

import json

from bench.hl7msg import mdm, oru_ed, oru_text
from engine.__main__ import COMMANDS
from engine.io.hl7_file import is_hl7_file, read_hl7_messages
from engine.pipeline.fhir_bundle import bundle_class
from schemas.cli import main
from tests.fixtures.docref import document_reference
from tests.engine.test_code_cli import _embedded_backend, repo  # noqa: F401 (fixtures: keyword model, no Triton)

NOTE = ["Seen by Dr. Bartholomew Quigley.", "The patient has a history of hypertension. Denies chest pain."]


def test_reader_splits_blocks_and_msh_runs(tmp_path):
    a, b, c = (mdm("T02", f"DOC-{n}", NOTE).bytes() for n in (1, 2, 3))
    path = tmp_path / "archive.hl7"
    # a: CR segments then a blank line; b and c: LF segments, c right after b (no blank line), in an MLLP frame
    path.write_bytes(b"\xef\xbb\xbfFHS|^~\\&\r" + a + b"\r\n" + b.replace(b"\r", b"\n") + b"\x0b" + c.replace(b"\r", b"\r\n") + b"\x1c\r\nFTS|1\r")
    entries = list(read_hl7_messages(path))
    assert [e.raw for e in entries] == [a, b, c] and all(e.error is None for e in entries)
    assert [e.line for e in entries] == [2, 2 + a.count(b"\r") + 1, 2 + a.count(b"\r") + 1 + b.count(b"\r")]
    assert is_hl7_file(path)


def test_reader_reports_orphans_and_oversized_messages(tmp_path):
    good = mdm("T02", "DOC-1", NOTE).bytes()
    big = mdm("T02", "DOC-2", ["x" * 5000]).bytes()
    path = tmp_path / "bad.hl7"
    path.write_bytes(b"PID|1||SECRET-MRN\rOBX|1|TX|||text\r\r" + big + b"\r" + good)
    entries = list(read_hl7_messages(path, max_message_bytes=2000))
    assert [(e.line, e.error.reason if e.error else "ok") for e in entries] == [(1, "not_hl7"), (4, "too_large"), (4 + big.count(b"\r") + 1, "ok")]
    assert all("SECRET" not in (e.error.detail if e.error else "") for e in entries)
    assert entries[-1].raw == good


def test_engine_code_on_an_hl7_archive_and_ndjson_together(tmp_path, repo, capsys):
    archive = tmp_path / "feed.hl7"
    messages = [
        mdm("T02", "DOC-1", NOTE),
        oru_text("RPT-1", ["Cough and fever, likely pneumonia."]),
        mdm("T02", "DOC-2", NOTE).set("PID", 3, ""),
        oru_ed("RPT-2", b"", raw_data="***"),
        mdm("T02", "DOC-3", ["Asthma and migraine."]),
        mdm("T11", "DOC-1", [], availability="CA"),  # cancel: withdraws what DOC-1 produced above
    ]
    archive.write_bytes(b"\n".join(m.bytes().replace(b"\r", b"\n") for m in messages))  # LF ends, blank line between
    ndjson = tmp_path / "notes.ndjson"
    ndjson.write_text(json.dumps(document_reference(" ".join(NOTE), "fhir-1")) + "\n")
    out, errors = tmp_path / "out.ndjson", tmp_path / "errors.ndjson"
    status = main("python -m engine", "", COMMANDS, ["code", str(archive), str(ndjson), "--out", str(out), "--errors", str(errors),
                                                     "--model-repository", str(repo), "--no-progress", "--recorded-at", "2026-01-01T00:00:00Z"])
    assert status == 1
    written = [json.loads(line) for line in out.read_text().splitlines()]
    for b in written:
        bundle_class("R4").model_validate(b)
    docs = [b["entry"][-1]["resource"]["entity"][0]["what"]["reference"] for b in written]
    assert docs == ["DocumentReference/EHR.DOC-1/_history/DOC-1-T02", "DocumentReference/LAB.RPT-1/_history/RPT-1-R01",  # version: MSH-10
                    "DocumentReference/EHR.DOC-3/_history/DOC-3-T02", "DocumentReference/EHR.DOC-1/_history/DOC-1-T11",
                    "DocumentReference/fhir-1/_history/1"]
    coded, withdrawal = written[0], written[3]
    assert withdrawal["entry"][-1]["resource"]["activity"]["coding"][0]["code"] == "NULLIFY"
    assert [e["resource"]["identifier"] for e in withdrawal["entry"][:-1]] == [e["resource"]["identifier"] for e in coded["entry"][:-1]]
    assert {e["resource"]["verificationStatus"]["coding"][0]["code"] for e in withdrawal["entry"][:-1]} == {"entered-in-error"}
    first = written[0]["entry"][0]["resource"]
    assert first["subject"]["reference"] == "Patient/GENHOSP.MRN-1001"
    assert {e["resource"]["code"]["coding"][0]["code"] for e in written[0]["entry"][:-1]} == {"I10"}
    rows = [json.loads(line) for line in errors.read_text().splitlines()]
    lines = [1 + sum(m.bytes().count(b"\r") + 1 for m in messages[:k]) for k in (2, 3)]
    assert [(r["line"], r["reason"], r["detail"]) for r in rows] == [
        (lines[0], "invalid_message", "PID-3 missing"), (lines[1], "bad_base64", "OBX-5 of OBX 1 not decodable as base64")]
    assert f"{archive}:{lines[0]}: invalid_message: PID-3 missing" in capsys.readouterr().err
