"""Stage 4b (versions with a description scorer): de-identified texts -> sentences -> the scorer graph ->
per note, each candidate code's best similarity to the note's sentences (titles/inclusion terms, and training
examples), the sentence that gave it, and the note embedding of the kNN term. ``schemas.descriptions`` holds
the note-side logic shared with the trainer; ``schemas.fusion`` combines the result with the classifier.

The graph is the Triton model ``metadata.description_scorer.model_name`` at the version's number, or its
``model.onnx`` in-process (the embedded backend), exactly like the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from engine.infra.model import DescriptionRuntime, ModelRuntime
from engine.pipeline.infer.base import InferenceBackend, plan_requests
from schemas.descriptions import SCORER_OUTPUTS, NoteDescriptions, Sentence, note_sentences, per_note
from schemas.fusion import note_embedding
from schemas.settings import EngineSettings
from schemas.text import pad_batch

SENTENCES_PER_REQUEST = 32  # within the scorer config's max_batch_size (64)


def make_scorer_backend(settings: EngineSettings, runtime: ModelRuntime) -> InferenceBackend | None:
    """The scorer graph's backend, the same kind as the classifier's (Triton when ``ICDCODER_TRITON_URL`` is set)."""
    described = runtime.descriptions
    if described is None:
        return None
    if settings.triton.url:
        from engine.pipeline.infer.triton import TritonBackend

        return TritonBackend(settings.triton, runtime.metadata.version, evidence=False,
                             model_name=described.info.model_name, output_names=SCORER_OUTPUTS)
    from engine.pipeline.infer.local import LocalOnnxBackend

    return LocalOnnxBackend(described.onnx_path, classifier=False)


@dataclass(frozen=True)
class DescribedNotes:
    sentences: list[Sentence]  # every sentence of the notes, in order (evidence spans point into the de-identified text)
    descriptions: list[NoteDescriptions]  # per note
    examples: list[NoteDescriptions]
    embeddings: list[np.ndarray | None]  # note embeddings (kNN term)


def sentences_of(texts: Sequence[str], described: DescriptionRuntime) -> list[Sentence]:
    return note_sentences(texts, described.tokenizer, described.info.max_sentence_tokens)


def describe(backend: InferenceBackend, sentences: list[Sentence], described: DescriptionRuntime, n_notes: int) -> DescribedNotes:
    """Run every sentence through the scorer (length-sorted requests) and gather the outputs per note."""
    if not sentences:
        empty = NoteDescriptions(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64))
        return DescribedNotes([], [empty] * n_notes, [empty] * n_notes, [None] * n_notes)
    segments = [s.segment for s in sentences]
    plan = plan_requests(segments, SENTENCES_PER_REQUEST)
    results = backend.outputs_many([pad_batch([segments[i] for i in rows], described.pad_id, multiple=8) for rows in plan], SCORER_OUTPUTS)
    outputs = [np.empty((len(sentences), *r.shape[1:]), dtype=r.dtype) for r in results[0]]
    for rows, result in zip(plan, results):
        for out, array in zip(outputs, result):
            out[rows] = array
    codes, sims, ex_codes, ex_sims, embeddings = outputs
    owner = np.fromiter((s.note_index for s in sentences), dtype=np.int64, count=len(sentences))
    return DescribedNotes(sentences, per_note(sentences, codes.astype(np.int64), sims, n_notes), per_note(sentences, ex_codes.astype(np.int64), ex_sims, n_notes),
                          [note_embedding(embeddings[owner == i]) for i in range(n_notes)])
