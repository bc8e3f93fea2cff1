"""Training text de-identified exactly as the engine de-identifies notes (``engine.deid``), so the PHI
placeholders the model learns are the ones it meets in serving. One policy for every corpus (prepared
datasets, vocabulary and pretraining text): a note the de-identifier fails on is dropped and counted, never
kept with text that may still hold PHI.

De-identification is single-threaded Python (rules, spaCy's NER), so a corpus is spread over one worker
process per planned thread (``schemas.threads``: the cores idle at start, or ``--threads``); each note's
result depends on the note and its patient key only, so the order of work does not change the output."""

from __future__ import annotations

import multiprocessing
from typing import Sequence

from tqdm.auto import tqdm

from trainer.data.importers import DataError

MIN_NOTES_PER_WORKER = 50  # below this, starting a worker (loading the NER model: ~2 s) costs more than it saves
CHUNK = 8

_worker_deid = None  # each worker process's Deidentifier


def _load_deidentifier():
    try:
        from engine.deid import Deidentifier
    except ImportError as err:
        raise DataError(f"the de-identifier (engine.deid) cannot be loaded ({err}); only for public or synthetic data: --no-deid") from err
    return Deidentifier()


def _init_worker() -> None:
    global _worker_deid
    _worker_deid = _load_deidentifier()


def _deidentify_one(deid, text: str, key: str | None) -> str | None:
    from engine.deid import DeidError

    try:
        return deid.deidentify(text, patient_key=key).text
    except DeidError:
        return None


def _in_worker(item: tuple[str, str | None]) -> str | None:
    return _deidentify_one(_worker_deid, *item)


def deidentify_texts(texts: Sequence[str], patient_keys: Sequence[str | None] | None = None, *,
                     desc: str = "de-identifying", progress: bool = True, workers: int | None = None) -> list[str | None]:
    """Each text de-identified, or None where de-identification failed. ``patient_keys`` keep surrogates
    consistent within a patient (the engine uses the patient reference). ``workers``: processes (default:
    the planned threads, fewer for a small corpus; at most one per note)."""
    from schemas.threads import current_threads

    keys = patient_keys if patient_keys is not None else [None] * len(texts)
    items = list(zip(texts, keys))
    workers = max(1, min(workers or current_threads(), len(items) if workers else len(items) // MIN_NOTES_PER_WORKER))
    bar = tqdm(total=len(items), desc=desc, unit=" notes", disable=not progress)
    if workers == 1:
        deid = _load_deidentifier()
        out = []
        for item in items:
            out.append(_deidentify_one(deid, *item))
            bar.update()
    else:
        # fork: the workers inherit the imported modules; each loads its own Deidentifier
        with multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker) as pool:
            out = []
            for text in pool.imap(_in_worker, items, chunksize=CHUNK):
                out.append(text)
                bar.update()
    bar.close()
    return out
