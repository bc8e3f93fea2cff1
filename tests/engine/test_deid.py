"""engine.deid: the API contract, offsets, date shifting, bad input and failure handling."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.deid import DeidConfig, Deidentifier, DeidError, DeidResult
from engine.deid.lexicons import DATA_DIR, key, load_lexicons
from engine.deid.recognizers import default_recognizers
from schemas.phi import PLACEHOLDERS, PhiCategory

NOTE = (
    "Patient: Smith, John   DOB: 03/14/1950   MRN: 48213377\n"
    "Mrs. Okafor is a 94-year-old woman seen by Dr. J. Chen on March 14th, 2024. Her daughter, Olga Haddad,\n"
    "lives at 42 Birch Lane, Springfield, IL 62704; phone (312) 555-0147; email olga.h@example.org.\n"
    "Portal https://portal.example-health.org/p/88 from 10.1.2.3. SSN 123-45-6789. Parkinson disease, Foley catheter.\n"
)


@pytest.fixture(scope="module")
def deid() -> Deidentifier:
    return Deidentifier(DeidConfig())


def test_removes_every_identifier_and_keeps_clinical_words(deid):
    r = deid.deidentify(NOTE)
    for phi in ("Smith", "John", "03/14", "48213377", "Okafor", "94", "Chen", "March 14th", "Olga", "Haddad",
                "Birch", "Springfield", "62704", "555-0147", "olga.h@", "portal.example", "10.1.2.3", "123-45-6789"):
        assert phi not in r.text, phi
    for kept in ("Parkinson disease", "Foley catheter", "IL", "-year-old woman", "Patient:"):
        assert kept in r.text, kept
    assert {c.placeholder for *_, c in r.replacements} >= {"[NAME]", "[DATE]", "[ID]", "[AGE]", "[ADDRESS]", "[PHONE]", "[EMAIL]", "[URL]", "[IP]"}
    assert set(PLACEHOLDERS) >= {r.text[n_s:n_e] for _, _, n_s, n_e, _ in r.replacements}


def test_replacements_and_detected_agree(deid):
    r = deid.deidentify(NOTE)
    assert isinstance(r, DeidResult)
    assert [(s.start, s.end, s.category) for s in r.detected] == [(o_s, o_e, c) for o_s, o_e, _, _, c in r.replacements]
    ends = [o_e for o_s, o_e, *_ in r.replacements]
    starts = [o_s for o_s, *_ in r.replacements]
    assert all(e <= s for e, s in zip(ends, starts[1:]))  # sorted, no overlap


def test_year_alone_stays_and_spelled_dates_go(deid):
    text = "Diagnosed in 2019. Seen on March 14th, on 14-Mar-2024, on 2024-03-14, the 5th of June, and 3/14."
    out = deid.deidentify(text).text
    assert "in 2019" in out
    assert out.count("[DATE]") == 5, out


def test_eponyms_survive(deid):
    for e in load_lexicons().eponyms:
        text = f"Mrs. Jane Wilson, seen by Dr. Mary Kelly, has {e}; her son, Tom Murphy, agrees."
        out = deid.deidentify(text).text
        assert e in out, (e, out)
        assert "Jane" not in out and "Tom" not in out and "Mary" not in out


def test_title_makes_even_an_eponym_a_name(deid):
    assert deid.deidentify("Dr. Foley placed a Foley catheter.").text == "Dr. [NAME] placed a Foley catheter."


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.text(max_size=40), middle=st.text(max_size=40), suffix=st.text(max_size=40))
def test_offset_map_round_trips(deid, prefix, middle, suffix):
    text = f"{prefix} Dr. Susan Miller {middle} on 03/14/2024 call (312) 555-0147 {suffix}"
    r = deid.deidentify(text)
    for o_s, o_e, n_s, n_e, _ in r.replacements:
        assert r.to_deidentified(o_s, o_e) == (n_s, n_e)  # original span -> placeholder
        assert r.to_original(n_s, n_e) == (o_s, o_e)  # placeholder -> original span
    # untouched text maps one to one: every character outside the replacements
    inside = {i for o_s, o_e, *_ in r.replacements for i in range(o_s, o_e)}
    for i in range(len(text)):
        if i not in inside:
            n_s, n_e = r.to_deidentified(i, i + 1)
            assert r.text[n_s:n_e] == text[i]
            assert r.to_original(n_s, n_e) == (i, i + 1)


def test_span_inside_a_placeholder_widens_to_the_phi(deid):
    text = "Seen by Dr. Susan Miller today."
    r = deid.deidentify(text)
    (o_s, o_e, n_s, n_e, cat), = r.replacements
    assert cat is PhiCategory.NAME and text[o_s:o_e] == "Susan Miller"
    assert r.to_original(n_s + 1, n_s + 2) == (o_s, o_e)
    with pytest.raises(ValueError):
        r.to_original(0, len(r.text) + 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00\x01\x02\ufffd\ud800 binary \xff\xfe garbage",
        "A" * 200_000,
        "Patient: John Smith " * 5000,  # one extremely long line
        "de " * 20_000,  # name particles: once a RecursionError (the note was dead-lettered)
        "1" + " " * 20_000 + "x",  # a day number and a long run of spaces: once quadratic in the "14 March" date rule
        "Ｄｒ. Jo\u200bhn Sm\u00adith, phone ３１２-５５５-０１４７, José Müller, 北京, 😀",
    ],
)
def test_bad_input_does_not_crash_or_leak(deid, text):
    r = deid.deidentify(text)
    assert "John" not in r.text and "555-0147" not in r.text and "５５５" not in r.text
    if "\u200b" in text:
        assert "Jo\u200bhn" not in r.text and "Sm\u00adith" not in r.text


def test_not_text_and_too_long_raise_deid_error():
    d = Deidentifier(DeidConfig(max_chars=100))
    with pytest.raises(DeidError):
        d.deidentify(b"Patient: John Smith")  # type: ignore[arg-type]
    with pytest.raises(DeidError) as err:
        d.deidentify("John Smith " * 20)
    assert "John" not in str(err.value)


class _Exploding:
    """A recognizer that fails the way a buggy pattern or library would."""

    supported_entities = ["NAME"]
    name = "Exploding"

    def analyze(self, text, entities, nlp_artifacts=None):
        raise RuntimeError(f"cannot handle {text[:30]}")


def test_recognizer_failure_raises_deid_error_without_phi():
    d = Deidentifier(DeidConfig(), recognizers=[*default_recognizers(), _Exploding()])
    returned = []
    with pytest.raises(DeidError) as err:
        returned.append(d.deidentify("Patient: John Smith, MRN 48213377"))
    assert returned == []  # nothing, redacted or not, came back
    assert "John" not in str(err.value) and "48213377" not in str(err.value)
    assert err.value.__suppress_context__  # the original message (which quotes the text) is not chained


class _OutOfRange(_Exploding):
    def analyze(self, text, entities, nlp_artifacts=None):
        from presidio_analyzer import RecognizerResult

        return [RecognizerResult("NAME", 0, len(text) + 5, 1.0)]


def test_bad_recognizer_output_raises_and_the_engine_dead_letters_it():
    """What the engine's stage 2 does with a DeidError: a ProcessingError("deid_failed") carrying no text."""
    import datetime as dt

    from engine.pipeline.deidentify import deidentify_note
    from engine.pipeline.types import ParsedNote
    from schemas.errors import ProcessingError

    d = Deidentifier(DeidConfig(), recognizers=[*default_recognizers(), _OutOfRange()])
    note = ParsedNote(document_id="d1", document_version=None, subject="Patient/1", encounter=None,
                      date=dt.datetime(2024, 3, 14), note_type=None, text="Patient: John Smith", fhir_version="R4")
    with pytest.raises(ProcessingError) as err:
        deidentify_note(d, note)
    assert err.value.reason == "deid_failed" and "John" not in str(err.value)


def test_date_shift_is_consistent_per_patient_and_keeps_format():
    d = Deidentifier(DeidConfig(date_shift=True, date_shift_salt="s3cret"))
    text = "Admitted on 03/14/2024, discharged 2024-03-20, seen March 14th, 2024."
    a1, a2 = d.deidentify(text, patient_key="patient/1"), d.deidentify(text, patient_key="patient/1")
    b = d.deidentify(text, patient_key="patient/2")
    assert a1.text == a2.text and a1.text != b.text
    assert "03/14/2024" not in a1.text and "[DATE]" not in a1.text
    import re

    assert re.search(r"on \d\d/\d\d/\d{4}, discharged \d{4}-\d\d-\d\d, seen [A-Z][a-z]+ \d+(st|nd|rd|th), \d{4}", a1.text), a1.text
    assert "[DATE]" in d.deidentify(text).text  # no patient key: placeholders
    with pytest.raises(ValueError):
        DeidConfig(date_shift=True)  # no salt
    assert "s3cret" not in repr(DeidConfig(date_shift=True, date_shift_salt="s3cret"))


def test_shared_between_threads(deid):
    expected = deid.deidentify(NOTE).text
    results = []
    threads = [threading.Thread(target=lambda: results.append(deid.deidentify(NOTE).text)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_presidio_analyzer_engine_path_matches(tmp_path):
    """Through Presidio's AnalyzerEngine (blank spaCy pipeline, created offline) the redactions agree."""
    direct = Deidentifier(DeidConfig()).deidentify(NOTE)
    via = Deidentifier(DeidConfig(presidio_engine=True, spacy_cache_dir=tmp_path / "spacy-blank")).deidentify(NOTE)
    assert (tmp_path / "spacy-blank" / "config.cfg").is_file()
    assert via.text == direct.text


def test_engine_deid_imports_neither_torch_nor_transformers():
    """Presidio -> spaCy -> thinc would import torch; engine.deid keeps it out (engine/ never imports torch)."""
    code = (
        "import sys, engine.deid, engine.cli.deid, bench.cli.deid_eval\n"
        "engine.deid.Deidentifier(engine.deid.DeidConfig()).deidentify('Dr. John Smith')\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'\n"
        "import torch, transformers\n"  # and a process that wants torch afterwards still gets it
        "assert transformers.utils.is_torch_available()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize(
    "text, phi, kept",
    [
        ("NAME: JOHN SMITH   DOB: 01/02/1934", ["JOHN", "SMITH", "01/02"], ["NAME:", "DOB:"]),
        ("Dictated by: John Smith, M.D.", ["John", "Smith"], ["M.D."]),
        ("Mrs. O'Connor-Smith and Dr. van der Berg. Maria de la Cruz called.", ["O'Connor", "Berg", "Maria", "Cruz"], ["called"]),
        ("Discussed with the patient's mother, Zorvat Kelm, at bedside.", ["Zorvat", "Kelm"], ["mother"]),
        ("Mr. Brown is doing well. Brown reports no pain.", ["Brown"], ["reports no pain"]),
        ("Seen on Jan 5th, 5th January 2024, Jan. 5, 2024 and 1/5-1/8. Labs 04/03: WBC 5.2.", ["Jan", "January", "1/5", "1/8", "04/03"], ["WBC 5.2", "Labs"]),
        ("She is 101 years old; aged 95. A 92 yo male.", ["101", "95", "92"], ["years old", "yo male"]),
        ("Lives at 123 Main St., Apt 4B, Boston, MA 02114. Transferred from Rochester, New York.", ["123 Main", "4B", "Boston", "02114", "Rochester"], ["MA", "New York"]),
        ("Email: j.doe@hospital.org; SSN: 123456789. Medicare ID 1EG4-TE5-MK73. Fax 555 123 4567.", ["j.doe", "123456789", "1EG4", "4567"], ["Medicare ID"]),
        ("BP 124/78, strength 5/5, murmur 2/6; 3 of 4 reflexes. Keller bunionectomy, Smith fracture, Wilson disease.",
         [], ["124/78", "5/5", "2/6", "Keller bunionectomy", "Smith fracture", "Wilson disease"]),
    ],
)
def test_realistic_variants(deid, text, phi, kept):
    out = deid.deidentify(text).text
    for p in phi:
        assert p not in out, (p, out)
    for k in kept:
        assert k in out, (k, out)


def test_deid_cli_text_and_ndjson(tmp_path, cli):
    plain = tmp_path / "note.txt"
    plain.write_bytes("Seen by Dr. Susan Miller on 3/14/2024, caf\xe9 au lait spots.".encode("cp1252"))  # not UTF-8
    done = cli("engine", "deid", str(plain))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Seen by Dr. [NAME] on [DATE], café au lait spots."
    nd = tmp_path / "notes.ndjson"
    nd.write_text(json.dumps({"id": 1, "text": "Call (312) 555-0147."}) + "\n\n" + json.dumps({"id": 2, "text": "MRN: 48213377"}) + "\n")
    done = cli("engine", "deid", str(nd), "--spans")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["Call [PHONE].", "MRN: [ID]"]
    assert rows[1]["deid_replacements"] == [[5, 13, 5, 9, "ID"]]
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"text": "ok"}\n{"text": 5}\n')
    done = cli("engine", "deid", str(bad))
    assert done.returncode == 2 and "bad.ndjson:2" in done.stderr


def test_world_lexicons_add_names_and_towns_but_no_ordinary_or_clinical_word():
    lex = load_lexicons()
    world = {name: {line.strip().lower() for line in (DATA_DIR / f"{name}.txt").read_text(encoding="utf-8").splitlines() if line.strip()}
             for name in ("world_first_names", "world_last_names", "world_places")}
    assert min(len(words) for words in world.values()) > 10_000
    eponym_words = {w for e in lex.eponyms for w in key(e).replace("-", " ").replace("'s", "").split()}
    for name, words in world.items():
        keys = {key(w) for w in words}
        for vocabulary in (lex.common_words, lex.clinical_words, lex.clinical, lex.clinical_if_head, lex.ambiguous, eponym_words):
            assert not keys & vocabulary, (name, sorted(keys & vocabulary)[:5])
    assert {"karlovic", "oladipupo"} <= lex.last_names and "moramanga" in lex.cities


def test_world_lexicons_reach_the_rules():
    rules = Deidentifier(DeidConfig(model="rules"))
    # a capitalised pair with one world-lexicon name ("Gift" is an ordinary word); a town of Madagascar without a cue
    out = rules.deidentify("Seen today with Gift Oladipupo. Planning travel to Moramanga next month.").text
    assert "Oladipupo" not in out and "Moramanga" not in out, out
