"""Stage 1 for HL7 v2: ER7 messages built with python-hl7 -> ParsedNote, and every malformed kind dead-lettered
with the segment and field named and no PHI in the error."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from bench.hl7msg import MessageBuilder, mdm, oru_ed, oru_text, patient_fields
from engine.pipeline.parse import parse_note
from engine.pipeline.parse_hl7 import fhir_id, parse_hl7_message
from engine.pipeline.types import SourceRecord
from schemas.errors import ProcessingError

TEXT = ["Discharge summary.", "Patient has essential hypertension | BP 150/95 & type 2 diabetes ^ on metformin.",
        "Café-au-lait spots noted ~ no change."]
PHI = ("MRN-1001", "DOE", "JANE", "19600101", "V-2001")


def parse(builder: MessageBuilder, **kw):
    return parse_hl7_message(SourceRecord(value=builder.bytes()), **kw)


def fails(builder: MessageBuilder | bytes, reason: str, detail_part: str) -> ProcessingError:
    value = builder if isinstance(builder, bytes) else builder.bytes()
    with pytest.raises(ProcessingError) as info:
        parse_hl7_message(SourceRecord(value=value))
    err = info.value
    assert err.reason == reason, str(err)
    assert detail_part in err.detail, err.detail
    assert not any(p in str(err) for p in PHI)  # PID and PV1 are PHI: never echoed
    return err


def test_mdm_t02_maps_identity_status_and_text():
    note = parse(mdm("T02", "DOC-1", TEXT))
    assert note.text == "\n".join(TEXT)  # escapes (\F\ \S\ \T\ \R\ \Xe9\) decoded by the library
    assert note.subject == "Patient/GENHOSP.MRN-1001"
    assert note.encounter == "Encounter/GENHOSP.V-2001"
    assert (note.document_id, note.document_version, note.parent_document) == ("EHR.DOC-1", "DOC-1-T02", None)  # MSH-10
    assert note.reference == "DocumentReference/EHR.DOC-1"
    assert (note.status, note.doc_status, note.note_type, note.source_format) == ("current", "final", "DS", "hl7v2")
    assert note.date == dt.datetime(2026, 3, 1, 9, 55)  # TXA-6 origination; no offset sent: naive


def test_t04_status_change_is_a_new_version_of_the_same_document():
    original, changed = parse(mdm("T02", "DOC-1", TEXT, completion="DO")), parse(mdm("T04", "DOC-1", TEXT, completion="LA"))
    assert original.document_id == changed.document_id and original.document_version != changed.document_version
    assert (original.doc_status, changed.doc_status) == ("preliminary", "final")
    assert parse(mdm("T02", "DOC-1", TEXT)).document_version == original.document_version  # a resent message: a repeat


def test_t08_edit_and_t06_addendum():
    edit = parse(mdm("T08", "DOC-1", ["Edited: chronic kidney disease stage 3."]))
    assert (edit.document_id, edit.document_version) == ("EHR.DOC-1", "DOC-1-T08")  # same document, new version
    addendum = parse(mdm("T06", "DOC-1-A1", ["Addendum: also chronic kidney disease stage 3."], parent="DOC-1"))
    assert (addendum.document_id, addendum.parent_document) == ("EHR.DOC-1-A1", "DocumentReference/EHR.DOC-1")
    assert addendum.text == "Addendum: also chronic kidney disease stage 3."


def test_t11_cancel_is_entered_in_error_of_the_same_document():
    note = parse(mdm("T11", "DOC-1", [], availability="CA"))
    coded = parse(mdm("T02", "DOC-1", TEXT))
    assert note.status == "entered-in-error" and note.text == ""
    assert (note.document_id, note.subject) == (coded.document_id, coded.subject) and note.document_version != coded.document_version
    assert parse(mdm("T04", "DOC-1", TEXT, availability="OB")).status == "superseded"  # obsolete
    assert parse(oru_text("RPT-1", ["x"], status="W")).status == "entered-in-error"  # ORU posted as wrong


def test_oru_ft_lines_with_formatting_escapes():
    b = oru_text("RPT-9", ["FINDINGS:", "Pneumonia in the right lower lobe."], value_type="FT")
    b.msg.segments("OBX")[1].assign_field("IMPRESSION:\\.br\\Community-acquired pneumonia.\\H\\ Urgent\\N\\", 5)  # raw FT escapes
    note = parse(b)
    assert note.text == "FINDINGS:\nIMPRESSION:\nCommunity-acquired pneumonia. Urgent"
    assert (note.document_id, note.note_type, note.doc_status) == ("LAB.RPT-9", "18842-5", "final")
    assert note.date == dt.datetime(2026, 3, 1, 9, 0)


def test_oru_ed_attachments_follow_the_fhir_content_type_rules():
    assert parse(oru_ed("RPT-2", "Acute appendicitis. Café".encode("utf-8"))).text == "Acute appendicitis. Café"
    html = b"<html><body><p>Acute appendicitis</p><script>x()</script><p>Plan: surgery</p></body></html>"
    assert parse(oru_ed("RPT-3", html, subtype="HTML")).text == "Acute appendicitis\n\nPlan: surgery"
    assert parse(oru_ed("RPT-4", b"", subtype="text/plain", encoding="A", raw_data="Sepsis, resolved")).text == "Sepsis, resolved"
    fails(oru_ed("RPT-5", b"%PDF-1.4", kind="AP", subtype="PDF"), "unsupported_content", "OBX-5 of OBX 1.contentType (application/pdf)")
    fails(oru_ed("RPT-6", b"", raw_data="not*base64!"), "bad_base64", "OBX-5 of OBX 1 not decodable as base64")
    fails(oru_ed("RPT-7", b"\xff\xfe bad utf-8"), "bad_charset", "OBX-5 of OBX 1")


def test_identifiers_that_are_not_fhir_ids_are_hashed_unambiguously():
    assert fhir_id("123", "") == "123" and fhir_id("123", "HOSP") == "HOSP.123"
    odd = fhir_id("12 34/5", "St. Mary's")
    assert odd.startswith("sha256.") and len(odd) <= 64 and "12" not in odd[7:9]
    assert fhir_id("A.B", "") != fhir_id("B", "A") and fhir_id("B", "A") == "A.B"
    note = parse(MessageBuilder("MDM", "T02", "c1").segment("PID", {3: {1: "12 34", 4: ("", "2.16.840.1.113883.19", "ISO")}})
                 .segment("TXA", {2: "CN", 12: "D7"}).segment("OBX", {2: "TX", 5: "Asthma."}))
    assert note.subject == "Patient/" + fhir_id("12 34", "2.16.840.1.113883.19") and note.encounter is None


def test_mrn_repetition_is_preferred_and_lf_separated_segments_are_read():
    b = mdm("T02", "DOC-1", TEXT)
    pid = b.msg.segment("PID")
    pid.assign_field("SSN-9", 3, 1, 1), pid.assign_field("SSA", 3, 1, 4), pid.assign_field("SS", 3, 1, 5)
    pid.assign_field("MRN-1001", 3, 2, 1), pid.assign_field("GENHOSP", 3, 2, 4), pid.assign_field("MR", 3, 2, 5)
    raw = b.text().replace("\r", "\n").encode()
    assert parse_hl7_message(SourceRecord(value=b"\x0b" + raw + b"\x1c\r")).subject == "Patient/GENHOSP.MRN-1001"


def test_latin1_message_with_msh18():
    b = mdm("T02", "DOC-1", ["Fièvre et toux."])
    b.msg.segment("MSH").assign_field("8859/1", 18)
    raw = b.text().encode("latin-1")  # escape() already hex-escaped é; put a raw latin-1 byte in too
    raw = raw.replace(b"toux", "tôux".encode("latin-1"))
    assert "tôux" in parse_hl7_message(SourceRecord(value=raw)).text


@pytest.mark.parametrize("mutate, reason, detail", [
    (lambda b: b.drop("PID"), "invalid_message", "PID segment missing"),
    (lambda b: b.set("PID", 3, ""), "invalid_message", "PID-3 missing"),
    (lambda b: b.drop("TXA"), "invalid_message", "TXA segment missing"),
    (lambda b: b.set("TXA", 12, ""), "invalid_message", "TXA-12 missing"),
    (lambda b: b.set("MSH", 10, ""), "invalid_message", "MSH-10 missing"),
    (lambda b: b.set("TXA", 6, "2026-03-01"), "invalid_message", "TXA-6 is not an HL7 date/time"),
    (lambda b: b.set("TXA", 6, "20261399"), "invalid_message", "TXA-6 is not a valid date/time"),
    (lambda b: b.drop("OBX"), "no_text", "OBX-5"),
    (lambda b: b.set("MSH", 9, "ADT^A01"), "unsupported_message", "MSH-9 is ADT^A01"),
    (lambda b: b.set("MSH", 9, "MDM^T01"), "unsupported_message", "without document content"),
    (lambda b: b.set("MSH", 9, "DOE JANE^X"), "unsupported_message", "MSH-9 is missing or malformed"),
    (lambda b: b.set("MSH", 18, "EBCDIC"), "bad_charset", "MSH-18"),
])
def test_malformed_mdm_names_segment_and_field(mutate, reason, detail):
    b = mdm("T02", "DOC-1", TEXT)
    mutate(b)
    fails(b, reason, detail)


@pytest.mark.parametrize("mutate, reason, detail", [
    (lambda b: b.drop("OBR"), "invalid_message", "OBR segment missing"),
    (lambda b: b.set("OBR", 3, ""), "invalid_message", "OBR-3 and OBR-2 missing"),
    (lambda b: b.set("OBR", 7, "yesterday"), "invalid_message", "OBR-7"),
    (lambda b: b.segment("OBR", {1: "2", 3: "RPT-10"}), "unsupported_message", "2 OBR segments"),
    (lambda b: b.set("PID", 3, ""), "invalid_message", "PID-3 missing"),
])
def test_malformed_oru_names_segment_and_field(mutate, reason, detail):
    b = oru_text("RPT-9", ["Pneumonia."])
    mutate(b)
    fails(b, reason, detail)


def test_not_hl7_bad_bytes_and_size():
    fails(b'{"resourceType": "DocumentReference"}', "not_hl7", "MSH")
    fails(b"MSH|", "not_hl7", "MSH-1/MSH-2")
    fails(mdm("T02", "DOC-1", TEXT).bytes().replace(b"Discharge", b"Disch\xffarge"), "bad_charset", "utf-8")
    with pytest.raises(ProcessingError) as info:
        parse_hl7_message(SourceRecord(value=mdm("T02", "DOC-1", ["x" * 500]).bytes()), max_note_chars=100)
    assert info.value.reason == "too_large"


def test_dispatch_by_input_format():
    hl7_record = SourceRecord(value=mdm("T02", "DOC-1", TEXT).bytes())
    assert parse_note(hl7_record, "hl7v2").source_format == "hl7v2"
    assert parse_note(hl7_record, "auto").document_id == "EHR.DOC-1"
    with pytest.raises(ProcessingError) as info:
        parse_note(hl7_record, "fhir")
    assert info.value.reason == "not_json"
    with pytest.raises(ProcessingError) as info:
        parse_note(SourceRecord(value=b"{}"), "hl7v2")
    assert info.value.reason == "not_hl7"


def test_library_built_message_round_trips_patient_fields():
    b = MessageBuilder("MDM", "T02", "c9").segment("PID", patient_fields("MRN^7", "GEN&HOSP"))  # separators escaped
    assert b"MRN\\S\\7" in b.bytes()
    b.segment("TXA", {12: "D1"}).segment("OBX", {2: "TX", 5: "Gout."})
    assert parse(b).subject == "Patient/" + fhir_id("MRN^7", "GEN&HOSP")


def test_base64_is_checked_strictly():
    good = base64.b64encode(b"Hip fracture.").decode()
    assert parse(oru_ed("R1", b"", raw_data=good[:8] + "\n" + good[8:])).text == "Hip fracture."  # wrapped lines are fine
