"""Training text de-identified exactly as the engine de-identifies notes (``engine.deid``), so the PHI
placeholders the model learns are the ones it meets in serving. One policy for every corpus (prepared
datasets, vocabulary and pretraining text): a note the de-identifier fails on is dropped and counted, never
kept with text that may still hold PHI."""

from __future__ import annotations

from typing import Sequence

from tqdm.auto import tqdm

from trainer.data.importers import DataError


def deidentify_texts(texts: Sequence[str], patient_keys: Sequence[str | None] | None = None, *,
                     desc: str = "de-identifying", progress: bool = True) -> list[str | None]:
    """Each text de-identified, or None where de-identification failed. ``patient_keys`` keep surrogates
    consistent within a patient (the engine uses the patient reference)."""
    try:
        from engine.deid import Deidentifier, DeidError
    except ImportError as err:
        raise DataError(f"the de-identifier (engine.deid) cannot be loaded ({err}); only for public or synthetic data: --no-deid") from err
    deid = Deidentifier()
    keys = patient_keys if patient_keys is not None else [None] * len(texts)
    out: list[str | None] = []
    for text, key in tqdm(list(zip(texts, keys)), desc=desc, unit=" notes", disable=not progress):
        try:
            out.append(deid.deidentify(text, patient_key=key).text)
        except DeidError:
            out.append(None)
    return out
