"""``trainer prepare``: notes from any importer -> a dataset directory.

Steps (each reported in stats.json): import -> drop notes under ``min_chars`` -> map codes onto the
ICD-10-CM 2026 code set (nearest valid ancestor; unmappable codes dropped and listed) -> chronic-code
imputation (patients with dates only) -> patient split 70/10/20 unless the source has splits ->
de-identification with the engine's de-identifier -> label space from train frequencies -> files.

Output: ``{train,dev,test}.jsonl`` (labelled notes; only splits that exist), ``unlabelled.jsonl``
(MTSamples, CodiEsp background: text for the vocabulary and pretraining, never all-negative examples),
``labels.json`` (``LabelSpace``), ``stats.json`` (``DatasetStats``) and ``stats.png`` (lengths, code
frequencies), ``code_mapping.json`` (``CodeMapping``; keys are codes as imported, i.e. format-normalised).
Records keep every mapped code; the label space decides which become model columns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from tqdm import tqdm

from schemas.icd10cm import RELEASE, load_code_set
from schemas.labels import LabelSpace
from schemas.notes import SPLITS, NoteRecord
from trainer.data.chronic import impute_chronic_codes
from trainer.data.deid import deidentify_texts
from trainer.data.importers import DataError, ImportReport
from trainer.data.split import assign_splits
from trainer.data.stats import DatasetStats, code_frequency, plot_statistics, split_stats

UNLABELLED_FILE = "unlabelled.jsonl"


@dataclass
class PrepareConfig:
    out: Path
    codiesp: Path | None = None
    language: str = "en"
    mtsamples: Path | None = None
    fhir: Path | None = None
    jsonl: Path | None = None
    synthetic: int | None = None  # number of synthetic notes
    seed: int = 0  # synthetic-note seed
    min_train_positives: int = 1  # every code seen in training
    min_chars: int = 50
    split_seed: int = 0
    tokenizer: Path | None = None
    deid: bool = True
    show_progress: bool = True


@dataclass
class _Sources:
    labelled: list[tuple[NoteRecord, str | None]]  # (record, split given by the source or None)
    unlabelled: list[NoteRecord]
    reports: list[ImportReport]


def _load_sources(config: PrepareConfig) -> _Sources:
    from trainer.data.importers.codiesp import available_splits, read_codiesp
    from trainer.data.importers.fhir import read_fhir
    from trainer.data.importers.jsonl import read_jsonl
    from trainer.data.importers.mtsamples import read_mtsamples

    src = _Sources([], [], [])

    def take(name: str, records: Iterable[NoteRecord], report: ImportReport) -> Iterator[NoteRecord]:
        src.reports.append(report)
        yield from tqdm(records, desc=f"reading {name}", unit=" notes", disable=not config.show_progress, leave=False)

    if config.codiesp:
        splits = available_splits(config.codiesp)
        if not splits:
            raise DataError(f"{config.codiesp}: no train/dev/test/background folders (is it a CodiEsp directory?)")
        for split in splits:
            report = ImportReport(f"codiesp/{split}")
            records = take(report.source, read_codiesp(config.codiesp, split, config.language, report), report)
            if split == "background":
                src.unlabelled += records
            else:
                src.labelled += [(r, split) for r in records]
    if config.mtsamples:
        report = ImportReport("mtsamples")
        src.unlabelled += take("mtsamples", read_mtsamples(config.mtsamples, report), report)
    if config.fhir:
        report = ImportReport("fhir")
        src.labelled += [(r, None) for r in take("fhir", read_fhir(config.fhir, report), report)]
    if config.jsonl:
        report = ImportReport("jsonl")
        src.labelled += [(r, None) for r in take("jsonl", read_jsonl(config.jsonl, report), report)]
    if config.synthetic:
        from trainer.data.synthetic import generate_notes

        report = ImportReport("synthetic")
        notes = [n.record for n in generate_notes(config.synthetic, seed=config.seed)]
        report.notes = len(notes)
        src.reports.append(report)
        src.labelled += [(r, None) for r in notes]
    if not src.labelled and not src.unlabelled:
        raise DataError("no notes: give at least one of --codiesp, --mtsamples, --fhir, --jsonl, --synthetic")
    ids = Counter(r.note_id for r, _ in src.labelled) + Counter(r.note_id for r in src.unlabelled)
    dupes = [i for i, n in ids.items() if n > 1]
    if dupes:
        raise DataError(f"{len(dupes)} note id(s) occur more than once across the inputs, e.g. {dupes[0]!r}")
    return src


def _deidentify(records: list[NoteRecord], desc: str, show_progress: bool, skipped: Counter) -> list[NoteRecord]:
    """Every text through the engine's de-identifier (``trainer.data.deid``); failed notes are dropped and counted."""
    texts = deidentify_texts([r.text for r in records], [r.patient_id for r in records], desc=f"de-identifying {desc}", progress=show_progress)
    out = [r.model_copy(update={"text": text}) for r, text in zip(records, texts) if text is not None]
    skipped["de-identification failed"] += len(records) - len(out)
    return out


def _token_lengths(records: list[NoteRecord], tokenizer) -> list[int]:
    return [len(e.ids) for e in tokenizer.encode_batch([r.text for r in records], add_special_tokens=False)]


def build_label_space(train: list[NoteRecord], min_train_positives: int) -> tuple[LabelSpace | None, Counter]:
    """Codes with >= N positive train notes, most frequent first (ties by code), described from the code set."""
    counts = Counter(c for r in train for c in set(r.codes))
    kept = sorted((c for c, n in counts.items() if n >= min_train_positives), key=lambda c: (-counts[c], c))
    if not kept:
        return None, counts
    code_set = load_code_set()
    return LabelSpace(
        codes=tuple(kept),
        descriptions=tuple(code_set.description(c) for c in kept),
        code_set_release=RELEASE,
        min_train_positives=min_train_positives,
    ), counts


def _write_jsonl(path: Path, records: list[NoteRecord]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(r.model_dump_json() + "\n")


def prepare_dataset(config: PrepareConfig) -> DatasetStats:
    """Run every step and write the dataset directory; returns the statistics also written to stats.json."""
    src = _load_sources(config)

    # 1. Length filter (on the original text).
    short = sum(len(r.text) < config.min_chars for r, _ in src.labelled) + sum(len(r.text) < config.min_chars for r in src.unlabelled)
    labelled = [(r, s) for r, s in src.labelled if len(r.text) >= config.min_chars]
    unlabelled = [r for r in src.unlabelled if len(r.text) >= config.min_chars]

    # 2. Codes onto the code set.
    mapping = load_code_set().map_codes(c for r, _ in labelled for c in r.codes)
    dropped = 0
    remapped = []
    for r, split in labelled:
        new = [mapping.apply(c) for c in r.codes]
        dropped += sum(c is None for c in new)
        remapped.append((r.model_copy(update={"codes": tuple(dict.fromkeys(c for c in new if c))}), split))

    # 3. Chronic-code imputation (needs patient ids and dates; a no-op otherwise).
    imputed_records, imputed = impute_chronic_codes([r for r, _ in remapped])
    labelled = [(r, split) for r, (_, split) in zip(imputed_records, remapped)]

    # 4. Patient split; given splits kept.
    try:
        splits = assign_splits(labelled, config.split_seed)
    except ValueError as err:
        raise DataError(f"patient split: {err}") from err

    # 5. De-identification.
    deid_skipped: Counter = Counter()
    if config.deid:
        splits = {name: _deidentify(recs, name, config.show_progress, deid_skipped) for name, recs in splits.items()}
        unlabelled = _deidentify(unlabelled, "unlabelled", config.show_progress, deid_skipped)

    # 6. Label space from train.
    labels, train_counts = build_label_space(splits.get("train", []), config.min_train_positives)
    if labelled and labels is None and any(r.codes for r, _ in labelled):
        raise DataError(f"no code has >= {config.min_train_positives} positive train notes: lower --min-train-positives")

    # 7. Write.
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in SPLITS:
            (out / f"{name}.jsonl").unlink(missing_ok=True)  # a re-run must not leave a stale split behind
        for name, recs in splits.items():
            _write_jsonl(out / f"{name}.jsonl", recs)
        if unlabelled:
            _write_jsonl(out / UNLABELLED_FILE, unlabelled)
        if labels is not None:
            (out / "labels.json").write_text(labels.model_dump_json(indent=1), encoding="utf-8")
        (out / "code_mapping.json").write_text(mapping.model_dump_json(indent=1), encoding="utf-8")
    except OSError as err:
        raise DataError(f"{out}: cannot write the dataset ({err.strerror})") from err

    tokenizer = None
    if config.tokenizer:
        from schemas.text import load_tokenizer

        try:
            tokenizer = load_tokenizer(config.tokenizer)
        except Exception as err:  # missing file, missing special tokens, or tokenizers' own error on bad JSON
            raise DataError(f"--tokenizer {config.tokenizer}: {err}") from err
    sources = {r.source: {"notes": r.notes, "skipped": dict(r.skipped)} for r in src.reports}
    if deid_skipped:
        sources["deid"] = {"notes": 0, "skipped": dict(deid_skipped)}
    stats = DatasetStats(
        sources=sources,
        notes_filtered_short=short,
        min_chars=config.min_chars,
        deid=config.deid,
        splits={
            name: split_stats(recs, labels, _token_lengths(recs, tokenizer) if tokenizer else None)
            for name, recs in splits.items()
        },
        unlabelled_notes=len(unlabelled),
        unlabelled=split_stats(unlabelled, None, _token_lengths(unlabelled, tokenizer) if tokenizer else None) if unlabelled else None,
        distinct_codes=mapping.counts,
        code_occurrences_dropped=dropped,
        labels_imputed=imputed,
        train_code_frequency=code_frequency(train_counts),
        label_space_size=len(labels) if labels else 0,
        min_train_positives=config.min_train_positives,
    )
    (out / "stats.json").write_text(stats.model_dump_json(indent=1), encoding="utf-8")
    plot_statistics(splits, train_counts, out / "stats.png")
    return stats
