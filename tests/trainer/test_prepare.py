"""prepare: chronic-code imputation, patient split, label space, statistics, loaders, CLIs."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from schemas.cli import main
from schemas.labels import LabelSpace
from schemas.notes import NoteRecord
from trainer.__main__ import COMMANDS
from trainer.data.chronic import impute_chronic_codes, load_chronic_table
from trainer.data.dataset import load_label_space, load_split
from trainer.data.importers import DataError
from trainer.data.prepare import PrepareConfig, build_label_space, prepare_dataset
from trainer.data.split import assign_splits, check_no_leakage, split_of


def _note(note_id, patient, day, codes):
    date = dt.date(2024, 1, 1) + dt.timedelta(days=day) if day is not None else None
    return NoteRecord(note_id=note_id, patient_id=patient, date=date, text="note text " * 10, codes=tuple(codes))


def test_chronic_table_reads_the_cci_csv():
    table = load_chronic_table()
    assert len(table.exact) > 70_000
    assert table.is_chronic("I10") and table.is_chronic("E11.9") and table.is_chronic("J44.9")
    assert not table.is_chronic("N39.0") and not table.is_chronic("J18.9")
    assert table.is_chronic("G20.A1")  # 2024 code: via its listed ancestor G20
    assert table.is_chronic("F32.A")  # 2022 code: via F32.0-F32.9, all chronic


def test_chronic_imputation_on_a_constructed_history():
    records = [
        _note("a1", "A", 0, ["I10"]),  # I10 first seen here
        _note("a2", "A", 30, ["J18.9"]),  # acute; I10 missing -> imputed
        _note("a3", "A", 60, ["I10", "E11.9"]),  # E11.9 first seen here
        _note("a4", "A", 90, ["E11.9"]),  # I10 missing -> imputed
        _note("a0", "A", -10, ["N39.0"]),  # before any chronic code: unchanged
        _note("b1", "B", 0, ["E11.9"]),  # E11.9 once only for B: nothing imputed
        _note("b2", "B", 5, []),
        _note("c1", "C", 0, ["J44.9"]),  # J44.9 twice, second note undated: C has only one dated note
        _note("c2", "C", None, ["J44.9"]),
        _note("d1", "D", 0, ["J18.9"]),  # J18.9 twice for D, but not chronic
        _note("d2", "D", 9, ["J18.9"]),
        _note("d3", "D", 20, []),
    ]
    out, added = impute_chronic_codes(records)
    codes = {r.note_id: r.codes for r in out}
    # E11.9 appears in a3 and a4 (already has it) -> a3 on; nothing before a3 gains it.
    assert codes == {
        "a1": ("I10",), "a2": ("J18.9", "I10"), "a3": ("I10", "E11.9"), "a4": ("E11.9", "I10"), "a0": ("N39.0",),
        "b1": ("E11.9",), "b2": (), "c1": ("J44.9",), "c2": ("J44.9",), "d1": ("J18.9",), "d2": ("J18.9",), "d3": (),
    }
    assert added == 2
    assert [r.note_id for r in out] == [r.note_id for r in records]


def test_patient_split_no_leakage_and_deterministic():
    records = [_note(f"n{i}", f"p{i // 3}", i % 3, []) for i in range(3000)]
    splits = assign_splits([(r, None) for r in records], seed=5)
    again = assign_splits([(r, None) for r in reversed(records)], seed=5)
    assert {k: sorted(r.note_id for r in v) for k, v in splits.items()} == {k: sorted(r.note_id for r in v) for k, v in again.items()}
    share = {k: len(v) / len(records) for k, v in splits.items()}
    assert abs(share["train"] - 0.7) < 0.05 and abs(share["dev"] - 0.1) < 0.03 and abs(share["test"] - 0.2) < 0.04
    patients = {k: {r.patient_id for r in v} for k, v in splits.items()}
    assert not (patients["train"] & patients["dev"] or patients["train"] & patients["test"] or patients["dev"] & patients["test"])
    other = assign_splits([(r, None) for r in records], seed=6)
    assert {r.note_id for r in other["dev"]} != {r.note_id for r in splits["dev"]}
    assert split_of("p1", 5) == split_of("p1", 5)
    given = assign_splits([(records[0], "dev"), (records[3], None)], seed=5)
    assert records[0] in given["dev"]
    with pytest.raises(ValueError, match="patient 'p0' is in both train and dev"):
        check_no_leakage({"train": [records[0]], "dev": [records[1]]})


def test_label_space_order_and_cut():
    train = [_note(f"n{i}", f"p{i}", 0, codes) for i, codes in enumerate([["I10", "E11.9"], ["I10"], ["E11.9", "I10"], ["E78.5"], ["E78.5"], ["J18.9"]])]
    labels, counts = build_label_space(train, min_train_positives=2)
    assert labels.codes == ("I10", "E11.9", "E78.5")  # by frequency, then code
    assert labels.descriptions[0] == "Essential (primary) hypertension" and labels.code_set_release == "ICD-10-CM 2026"
    assert labels.min_train_positives == 2 and counts["J18.9"] == 1


def test_synthetic_dataset_dir(synthetic_dataset_dir, synthetic_notes):
    labels = load_label_space(synthetic_dataset_dir)
    splits = {s: load_split(synthetic_dataset_dir, s) for s in ("train", "dev", "test")}
    assert sum(len(v) for v in splits.values()) == len(synthetic_notes)
    check_no_leakage(splits)
    train_counts = Counter(c for r in splits["train"] for c in r.codes)
    assert all(train_counts[c] >= labels.min_train_positives for c in labels.codes)  # default 1: every code seen in training
    assert [train_counts[c] for c in labels.codes] == sorted((train_counts[c] for c in labels.codes), reverse=True)
    stats = json.loads((synthetic_dataset_dir / "stats.json").read_text())
    assert stats["deid"] is False and stats["labels_imputed"] > 0  # patients with dated notes
    originals = {n.record.note_id: n.record for n in synthetic_notes}
    for r in splits["train"]:
        assert set(originals[r.note_id].codes) <= set(r.codes)  # imputation only adds
        assert r.text == originals[r.note_id].text  # --no-deid: text untouched
    assert stats["splits"]["train"]["notes"] == len(splits["train"])


def test_loaders_give_clear_errors(tmp_path, synthetic_dataset_dir):
    with pytest.raises(FileNotFoundError, match=r"no dev split \(present: none"):  # a MissingDataError
        load_split(tmp_path, "dev")
    (tmp_path / "dev.jsonl").write_text("")
    with pytest.raises(DataError, match="the dev split is empty"):
        load_split(tmp_path, "dev")
    with pytest.raises(DataError, match="no label space"):
        load_label_space(tmp_path)
    with pytest.raises(DataError, match="unknown split"):
        load_split(synthetic_dataset_dir, "validation")


def test_prepare_codiesp(data_dir, tmp_path):
    stats = prepare_dataset(PrepareConfig(out=tmp_path, codiesp=data_dir / "codiesp", deid=False, show_progress=False))
    assert {s: v.notes for s, v in stats.splits.items()} == {"train": 500, "dev": 250}  # given splits kept
    assert stats.unlabelled_notes == 2751 and stats.labels_imputed == 0  # no patients or dates in case reports
    assert stats.distinct_codes["mapped"] > 0 and stats.code_occurrences_dropped == 0
    labels = load_label_space(tmp_path)
    assert len(labels) == stats.label_space_size and all(c == c.upper() for c in labels.codes)
    mapping = json.loads((tmp_path / "code_mapping.json").read_text())
    assert mapping["mapped"]["S02.0XX"] == "S02.0"  # keys: codes as imported (format-normalised)
    assert not (tmp_path / "test.jsonl").exists()
    assert (tmp_path / "stats.png").read_bytes()[:4] == b"\x89PNG"


def test_prepare_with_deidentification(tmp_path):
    from trainer.data.synthetic import generate_notes

    stats = prepare_dataset(PrepareConfig(out=tmp_path, synthetic=12, seed=4, min_train_positives=1, show_progress=False))
    assert stats.deid
    notes = {n.record.note_id: n for n in generate_notes(12, seed=4)}
    written = [r for s in stats.splits for r in load_split(tmp_path, s)]
    assert len(written) + sum(stats.sources.get("deid", {}).get("skipped", {}).values()) == 12
    for r in written:
        original = notes[r.note_id]
        text = original.record.text
        mrn = next(text[s.start : s.end] for s in original.phi if s.category.value == "ID")
        assert mrn not in r.text and "[NAME]" in r.text and "[DATE]" in r.text
        assert r.codes == original.record.codes or set(original.record.codes) <= set(r.codes)



def test_parallel_deidentification_gives_the_serial_result():
    """Worker processes (one per planned thread) change the speed, never the text."""
    from trainer.data.deid import deidentify_texts
    from trainer.data.synthetic import generate_notes

    notes = [n.record for n in generate_notes(16, seed=5)]
    texts, keys = [r.text for r in notes], [r.patient_id for r in notes]
    parallel = deidentify_texts(texts, keys, progress=False, workers=2)
    assert parallel == deidentify_texts(texts, keys, progress=False, workers=1)
    assert all(t is not None and "[NAME]" in t for t in parallel)

def test_codes_cli(capsys):
    assert main("python -m trainer", "", COMMANDS, ["codes", "e119", "t81.4xx", "Z99.99", "QQQ"]) == 0
    out = capsys.readouterr().out
    assert "E11.9" in out and "billable" in out and "Type 2 diabetes mellitus without complications" in out
    assert "invalid -> T81.4" in out and "invalid -> Z99" in out and "NOT IN CODE SET" in out
    assert main("python -m trainer", "", COMMANDS, ["codes", "QQQ"]) == 2


def test_prepare_cli(tmp_path, capsys):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(_note(f"n{i}", f"p{i}", 0, ["e119", "t81.4xx", "Z99.99"] if i % 2 else ["I10"]).model_dump_json() + "\n" for i in range(40)))
    out = tmp_path / "out"
    assert main("python -m trainer", "", COMMANDS, ["prepare", "--jsonl", str(jsonl), "--out", str(out), "--no-deid", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Label space:" in printed and "mapped to an ancestor" in printed
    assert LabelSpace.model_validate_json((out / "labels.json").read_text()).codes[0] in ("E11.9", "I10")
    assert main("python -m trainer", "", COMMANDS, ["prepare", "--out", str(out), "--no-deid"]) == 2
    assert "give at least one of" in capsys.readouterr().err
    assert main("python -m trainer", "", COMMANDS, ["prepare", "--jsonl", str(tmp_path / "nope.jsonl"), "--out", str(out)]) == 2
