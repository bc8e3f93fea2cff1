"""Importers on the real CodiEsp and MTSamples files, on FHIR resources built here, and on bad input."""

from __future__ import annotations

import base64
import json

import pytest

from schemas.icd10cm import ICD10CM_SYSTEM
from trainer.data.importers import DataError, ImportReport
from trainer.data.importers.codiesp import read_codiesp
from trainer.data.importers.fhir import read_fhir
from trainer.data.importers.jsonl import read_jsonl
from trainer.data.importers.mtsamples import read_mtsamples


def test_codiesp_train_and_dev(data_dir):
    root = data_dir / "codiesp"
    for split, n_notes, n_pairs in (("train", 500, 5639), ("dev", 250, 2677)):
        report = ImportReport(split)
        notes = list(read_codiesp(root, split, report=report))
        assert len(notes) == report.notes == n_notes and not report.skipped
        assert sum(len(n.codes) for n in notes) == n_pairs  # every docID/code line, none lost
        assert all(n.codes and n.patient_id == n.note_id and n.source == "codiesp" for n in notes)
        assert all(c == c.upper() for n in notes for c in n.codes)
    first = next(read_codiesp(root, "train"))
    assert first.note_id == "S0004-06142005000700014-1"
    assert first.codes[:3] == ("N44.8", "Z20.818", "R60.9")  # file order, normalised
    assert "37-year-old man" in first.text  # English by default


def test_codiesp_spanish_and_background(data_dir):
    root = data_dir / "codiesp"
    spanish = next(read_codiesp(root, "train", language="es"))
    assert spanish.note_id == "S0004-06142005000700014-1" and "años" in spanish.text
    background = list(read_codiesp(root, "background"))
    assert len(background) == 2751 and not any(n.codes for n in background)


def test_mtsamples_deduplicated(data_dir):
    report = ImportReport("mtsamples")
    notes = list(read_mtsamples(data_dir / "mtsamples" / "mtsamples.csv", report))
    assert report.notes == len(notes) and 2300 < len(notes) < 2400
    assert report.notes + sum(report.skipped.values()) == 4999  # every row accounted for
    assert report.skipped["no transcription"] == 33
    assert len({" ".join(n.text.lower().split()) for n in notes}) == len(notes)
    assert all(n.note_type and not n.codes and n.source == "mtsamples" for n in notes)
    assert notes[0].note_id == "mtsamples-1" and notes[0].note_type == "Allergy / Immunology"


def _codiesp_copy(tmp_path, tsv_lines, texts):
    split = tmp_path / "train"
    (split / "text_files_en").mkdir(parents=True)
    (split / "trainD.tsv").write_text("".join(line + "\n" for line in tsv_lines), encoding="utf-8")
    for name, content in texts.items():
        path = split / "text_files_en" / f"{name}.txt"
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
    return tmp_path


def test_codiesp_bad_inputs_name_file_and_line(tmp_path):
    good = {"a": "A patient with fever and cough for three days was admitted.", "b": "Another case."}
    root = _codiesp_copy(tmp_path / "1", ["a\ti10", "b e11.9"], good)
    with pytest.raises(DataError, match=r"trainD\.tsv:2: expected 'docID<TAB>code'"):
        list(read_codiesp(root, "train"))
    root = _codiesp_copy(tmp_path / "2", ["a\ti10", "b\tnot a code"], good)
    with pytest.raises(DataError, match=r"trainD\.tsv:2: 'not a code' is not an ICD-10-CM code"):
        list(read_codiesp(root, "train"))
    root = _codiesp_copy(tmp_path / "3", ["a\ti10"], {"a": b"caf\xe9 latin-1 bytes"})
    with pytest.raises(DataError, match=r"a\.txt: not UTF-8 text"):
        list(read_codiesp(root, "train"))
    root = _codiesp_copy(tmp_path / "4", ["a\ti10", "c\tj18.9"], good)
    with pytest.raises(DataError, match=r"trainD\.tsv: 1 coded document\(s\) have no text file"):
        list(read_codiesp(root, "train"))
    root = _codiesp_copy(tmp_path / "5", ["a\ti10"], {"a": good["a"], "b": "  \n"})
    report = ImportReport("x")
    assert [n.note_id for n in read_codiesp(root, "train", report=report)] == ["a"]
    assert report.skipped == {"empty text file": 1}  # skipped, and counted
    with pytest.raises(DataError, match="no such directory"):
        list(read_codiesp(tmp_path / "missing", "train"))


def test_jsonl_bad_lines_name_file_and_line(tmp_path):
    good = {"note_id": "n1", "text": "Some note text that is long enough.", "codes": ["e119"]}
    path = tmp_path / "notes.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + '{"note_id": "n2", "text": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"notes\.jsonl:3: malformed JSON"):
        list(read_jsonl(path))
    path.write_text(json.dumps(good) + "\n" + json.dumps({"note_id": "n2", "text": "   "}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"notes\.jsonl:2: not a note record \(text: Value error, note has no text\)"):
        list(read_jsonl(path))
    path.write_text(json.dumps({**good, "codes": ["hello"]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"notes\.jsonl:1: 'hello' is not an ICD-10-CM code"):
        list(read_jsonl(path))
    path.write_bytes(json.dumps(good).encode() + b"\n\xff\xfe\n")
    with pytest.raises(DataError, match=r"notes\.jsonl:2: not UTF-8"):
        list(read_jsonl(path))
    with pytest.raises(DataError, match=r"missing\.jsonl: cannot open"):
        list(read_jsonl(tmp_path / "missing.jsonl"))
    path.write_text(json.dumps(good) + "\n" + json.dumps({"record": {**good, "note_id": "n2"}, "phi": []}) + "\n", encoding="utf-8")
    records = list(read_jsonl(path))  # NoteRecord lines and `trainer synthetic` lines both read
    assert [r.note_id for r in records] == ["n1", "n2"] and records[0].codes == ("E11.9",)


def test_mtsamples_bad_rows(tmp_path):
    path = tmp_path / "mt.csv"
    path.write_text('note_id,medical_specialty,transcription\n1,Cardiology,"Text one is here."\n2,Cardiology\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"mt\.csv:3: row does not have the header's 3 fields"):
        list(read_mtsamples(path))
    path.write_text("id,text\n1,x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"mt\.csv:1: header lacks column\(s\) \['note_id', 'medical_specialty', 'transcription'\]"):
        list(read_mtsamples(path))


def _doc(doc_id, text=None, encounter=None, charset="utf-8", url=None, patient="Patient/p1", date="2024-03-14T10:00:00Z"):
    attachment = {"contentType": f"text/plain; charset={charset}"}
    if text is not None:
        attachment["data"] = base64.b64encode(text.encode(charset)).decode()
    if url:
        attachment = {"contentType": "text/plain", "url": url}
    doc = {"resourceType": "DocumentReference", "id": doc_id, "status": "current", "subject": {"reference": patient},
           "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
           "content": [{"attachment": attachment}]}
    if date:
        doc["date"] = date
    if encounter:
        doc["context"] = {"encounter": [{"reference": encounter}]}
    return doc


def _condition(cid, code, encounter=None, evidence_doc=None, system=ICD10CM_SYSTEM, status=None):
    cond = {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": system, "code": code}]}}
    if encounter:
        cond["encounter"] = {"reference": encounter}
    if evidence_doc:
        cond["evidence"] = [{"detail": [{"reference": f"DocumentReference/{evidence_doc}"}]}]
    if status:
        cond["verificationStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": status}]}
    return cond


def test_fhir_ndjson_and_bundle(tmp_path):
    resources = [
        _doc("d1", "Follow-up: hypertension and type 2 diabetes, stable.", encounter="Encounter/e1"),
        _doc("d2", "Café visit: patient reports cough, pneumonia suspected.", charset="latin-1", encounter="Encounter/e2"),
        _doc("d3", url="https://ehr.example.org/binary/1"),
        {**_doc("d4", "Undated note: only a partial period start.", date=None), "context": {"period": {"start": "2024-03"}}},
        _condition("c1", "I10", encounter="Encounter/e1"),
        _condition("c2", "e11.9", encounter="Encounter/e1"),
        _condition("c3", "J18.9", evidence_doc="d2"),
        _condition("c4", "38341003", encounter="Encounter/e1", system="http://snomed.info/sct"),
        _condition("c5", "N39.0", encounter="Encounter/e2", status="refuted"),
        _condition("c6", "R05.9"),
        {"resourceType": "Patient", "id": "p1"},
        _condition("c7", "R50.9", encounter="Encounter/e1", status="unconfirmed"),  # e.g. an undecided engine suggestion
    ]
    ndjson = tmp_path / "export.ndjson"
    ndjson.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
    report = ImportReport("fhir")
    notes = {n.note_id: n for n in read_fhir(ndjson, report)}
    assert set(notes) == {"d1", "d2", "d4"} and notes["d4"].date is None and not notes["d4"].codes
    assert notes["d1"].codes == ("I10", "E11.9") and notes["d2"].codes == ("J18.9",)
    assert notes["d2"].text.startswith("Café")  # charset honoured
    assert notes["d1"].patient_id == "Patient/p1" and notes["d1"].encounter_id == "Encounter/e1"
    assert str(notes["d1"].date) == "2024-03-14" and notes["d1"].note_type == "Progress note"
    assert report.skipped == {
        "note without inline text (unsupported_content)": 1,
        "condition without ICD-10-CM coding": 1,
        "condition refuted": 1,
        "condition unconfirmed": 1,
        "condition linked to no encounter or note": 1,
        "resource type Patient": 1,
    }
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources[:2] + resources[4:7]]}))
    assert {n.note_id: n.codes for n in read_fhir(bundle)} == {"d1": ("I10", "E11.9"), "d2": ("J18.9",)}


def test_fhir_bad_input_names_file_and_line(tmp_path):
    path = tmp_path / "bad.ndjson"
    path.write_text(json.dumps(_doc("d1", "Some text here for the note.")) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.ndjson:2: malformed JSON"):
        list(read_fhir(path))
    bad_doc = _doc("d1", "Some text here for the note.")
    bad_doc["status"] = 42
    path.write_text(json.dumps(bad_doc) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.ndjson:1: invalid DocumentReference \(status") as err:
        list(read_fhir(path))
    assert "Some text" not in str(err.value)  # field paths only, never content
    path.write_text(json.dumps(_condition("c1", "not-a-code", encounter="Encounter/e1")) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.ndjson:1: 'not-a-code' is not an ICD-10-CM code"):
        list(read_fhir(path))
    with pytest.raises(DataError, match="no such file or directory"):
        list(read_fhir(tmp_path / "absent.ndjson"))
