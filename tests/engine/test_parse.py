"""Stage 1: DocumentReference bytes -> ParsedNote, and every failure reason, with no PHI in errors."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.pipeline.parse import parse_document_reference
from schemas.errors import ProcessingError
from schemas.fhir.attachment import html_to_text
from tests.fixtures.docref import b64, document_reference, from_note_record, source_record, to_bytes
from trainer.data.importers.mtsamples import mtsamples_texts

PHI = "Jonathan Quincy Smithers"
TEXT = f"Patient {PHI} has hypertension. Follow up in 2 weeks."


def parse(resource, **kw):
    return parse_document_reference(source_record(resource), **kw)


def fails(resource, reason: str, **kw) -> ProcessingError:
    with pytest.raises(ProcessingError) as info:
        parse(resource, **kw)
    err = info.value
    assert err.reason == reason, str(err)
    assert PHI not in str(err) and "Smithers" not in err.detail  # never the content
    return err


def test_r4_fields_and_text():
    note = parse(document_reference(TEXT, "doc-7", subject="Patient/p9", encounter="Encounter/e3", version_id="4"))
    assert note.text == TEXT
    assert (note.document_id, note.document_version, note.subject, note.encounter) == ("doc-7", "4", "Patient/p9", "Encounter/e3")
    assert note.date == dt.datetime(2026, 3, 4, 10, 20, 30, tzinfo=dt.timezone.utc)
    assert note.note_type == "11506-3" and note.fhir_version == "R4"
    assert note.reference == "DocumentReference/doc-7"


def test_r5_context_is_a_list_of_references():
    doc = document_reference(TEXT, fhir_version="R5", encounter="Encounter/e5")
    assert parse(doc, fhir_version="R5").encounter == "Encounter/e5"
    # An R5-shaped context is invalid R4 (and the reverse): the version setting matters.
    fails(doc, "invalid_resource", fhir_version="R4")
    fails(document_reference(TEXT, encounter="Encounter/e5"), "invalid_resource", fhir_version="R5")


def test_optional_fields_absent():
    note = parse(document_reference(TEXT, subject=None, encounter=None, version_id=None, date=None, note_type=None))
    assert (note.subject, note.encounter, note.document_version, note.date, note.note_type) == (None, None, None, None, None)


def test_charset_is_honoured_and_bom_dropped():
    text = "Café au lait spots, naïve patient, 37 °C"
    assert parse(document_reference(text, content_type="text/plain; charset=ISO-8859-1", charset="latin-1")).text == text
    assert parse(document_reference(text, content_type="text/plain;charset=\"utf-16\"", charset="utf-16")).text == text
    assert parse(document_reference(text, content_type="text/plain", charset="utf-8-sig")).text == text  # BOM


def test_bad_charset():
    err = fails(document_reference(TEXT, content_type="text/plain; charset=klingon-8"), "bad_charset")
    assert "content.0.attachment" in err.detail
    doc = document_reference(TEXT)
    doc["content"][0]["attachment"]["data"] = b64(b"caf\xe9 " + PHI.encode())  # latin-1 bytes declared UTF-8
    fails(doc, "bad_charset")


def test_html_is_reduced_to_text():
    html = f"<html><head><title>x</title><style>p {{color: red}}</style></head><body><h1>Note</h1><p>{PHI} has <b>chest&nbsp;pain</b> &amp; cough.</p><script>alert(1)</script><p>Plan: rest</p></body></html>"
    text = parse(document_reference(html, content_type="text/html; charset=utf-8")).text
    assert text == f"Note\n\n{PHI} has chest\xa0pain & cough.\n\nPlan: rest"
    assert html_to_text("a<br>b") == "a\nb"


def test_plain_text_wins_over_html():
    doc = document_reference("<p>html version</p>", content_type="text/html")
    doc["content"].append({"attachment": {"contentType": "text/plain", "data": b64(b"plain version")}})
    assert parse(doc).text == "plain version"


def test_url_only_and_other_content_types_are_unsupported():
    err = fails(document_reference(None, url="https://ehr.example.org/Binary/1"), "unsupported_content")
    assert "does not fetch" in err.detail and "ehr.example.org" not in err.detail
    err = fails(document_reference(TEXT, content_type="application/pdf"), "unsupported_content")
    assert "application/pdf" in err.detail


def test_message_level_errors():
    fails(b"\xff\xfe not utf-8", "not_json")
    fails(b'{"resourceType": "DocumentReference", ', "not_json")
    fails(b"[1, 2]", "not_document_reference")
    err = fails({"resourceType": "Patient", "name": [{"text": PHI}]}, "not_document_reference")
    assert "Patient" in err.detail
    fails({"resourceType": PHI}, "not_document_reference")


def test_invalid_resource_names_locations_not_values():
    doc = document_reference(TEXT)
    doc["date"] = PHI  # a value that must not be echoed
    doc["unknownField"] = PHI
    err = fails(doc, "invalid_resource")
    assert "date" in err.detail and "unknownField" in err.detail
    doc = document_reference(TEXT)
    del doc["content"]
    assert "content" in fails(doc, "invalid_resource").detail
    doc = document_reference(TEXT)
    del doc["id"]
    assert fails(doc, "invalid_resource").detail.startswith("id")


def test_bad_base64():
    doc = document_reference(TEXT)
    doc["content"][0]["attachment"]["data"] = "not*base64!" + PHI
    assert "content.0.attachment.data" in fails(doc, "bad_base64").detail


def test_too_large_and_no_text():
    fails(document_reference("x" * 501), "too_large", max_note_chars=500)
    assert parse(document_reference("x" * 500), max_note_chars=500).text == "x" * 500
    fails(to_bytes(document_reference("x" * 200)) + b" " * 20_000_000, "too_large", max_note_chars=500)  # before JSON parsing
    fails(document_reference("  \n\t "), "no_text")
    doc = document_reference(TEXT)
    doc["content"][0]["attachment"] = {"contentType": "text/plain", "title": "empty"}
    fails(doc, "no_text")


def test_base64_string_roundtrip_matches_factory():
    raw = json.loads(to_bytes(document_reference(TEXT)))
    assert base64.b64decode(raw["content"][0]["attachment"]["data"]).decode() == TEXT


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=300).filter(lambda t: t.strip()))
def test_any_text_roundtrips(text):
    assert parse(document_reference(text)).text == text.removeprefix("\ufeff")


def test_synthetic_and_mtsamples_notes_parse():
    from trainer.data.synthetic import generate_notes

    for n in generate_notes(10, seed=3):
        for version in ("R4", "R5"):
            note = parse(from_note_record(n.record, version), fhir_version=version)
            assert note.text == n.record.text and note.subject.startswith("Patient/")
    for text in mtsamples_texts(min_chars=200)[:10]:
        assert parse(document_reference(text)).text == text


def test_deeply_nested_message_is_too_deep_not_a_crash():
    ext: dict = {"url": "https://example.org/x", "valueString": "v"}
    for _ in range(200):
        ext = {"url": "https://example.org/x", "extension": [ext]}
    deep = {**document_reference("Hypertension.", "deep"), "extension": [ext]}
    for value in (json.dumps(deep).encode(), b"[" * 5000 + b"]" * 5000):
        with pytest.raises(ProcessingError) as err:
            parse_document_reference(source_record(value))
        assert err.value.reason == "too_deep"
