"""Processed-note records in Redis: at-least-once delivery with byte-identical re-deliveries.

A record is keyed by ``fhir_bundle.note_key`` = sha256(DocumentReference id | meta.versionId | model name |
model version) and holds what was produced the first time (Bundle bytes, scores, suggestions, processing
time). Two layers keep re-deliveries byte-identical:

1. ``processed_at()`` feeds the processor the first processing time, so it rebuilds the same Bundle;
2. ``settle()`` writes first productions with ``SET NX`` and swaps the stored output into repeats, so even
   a note processed concurrently by two consumers (after a rebalance) comes out once-produced.

A record whose note text differs (same id and version, or no ``meta.versionId`` at all, but edited text)
is a new production, not a repeat: it replaces the record. Keys are hashes (Redis never sees a document
id in clear) and expire after ``processed_ttl_s``. A set per document (``document:<sha256(id)>``) lists its
records, so an entered-in-error version can withdraw everything the document produced (``productions()``). A Redis outage is a ``TransientError``: the batch is
retried, never dropped.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
from typing import Sequence

import redis
from pydantic import BaseModel, ConfigDict

from engine.pipeline.fhir_bundle import note_key
from engine.pipeline.types import ProcessedNote
from schemas.envelopes import ModelRef, Suggestion
from schemas.errors import TransientError


class ProducedOutput(BaseModel):
    """What a note produced, minus its text: enough to re-emit identical bytes without inference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bundle_b64: str
    output_key_b64: str
    processed_at: dt.datetime
    model: ModelRef
    thresholds_global: float
    scores: dict[str, float]
    suggestions: tuple[Suggestion, ...]
    deid_text_sha256: str
    note_text_sha256: str  # tells a re-delivery (same text) from an edit under the same id/version

    @classmethod
    def of(cls, n: ProcessedNote) -> "ProducedOutput":
        return cls(
            bundle_b64=base64.b64encode(n.bundle_json).decode(),
            output_key_b64=base64.b64encode(n.output_key).decode(),
            processed_at=n.processed_at,
            model=n.model,
            thresholds_global=n.thresholds_global,
            scores=n.scores,
            suggestions=n.suggestions,
            deid_text_sha256=n.deid_text_sha256,
            note_text_sha256=_text_hash(n),
        )

    def applied_to(self, n: ProcessedNote) -> ProcessedNote:
        """``n`` with the stored output in place of the fresh one (same bytes, same identifiers)."""
        return dataclasses.replace(
            n,
            bundle_json=base64.b64decode(self.bundle_b64),
            output_key=base64.b64decode(self.output_key_b64),
            processed_at=self.processed_at,
            thresholds_global=self.thresholds_global,
            scores=dict(self.scores),
            suggestions=self.suggestions,
        )


class StoreUnavailable(TransientError):
    """Redis did not answer: retry the batch (also when raised inside the processor's time lookup)."""

    dependency = "redis"


def _text_hash(n: ProcessedNote) -> str:
    return hashlib.sha256(n.note.text.encode("utf-8")).hexdigest()


class ProcessedStore:
    def __init__(self, client: redis.Redis, key_prefix: str, ttl_s: int) -> None:
        self.client = client
        self.prefix = key_prefix
        self.ttl_s = ttl_s

    def _redis_key(self, note_key: str) -> str:
        return f"{self.prefix}processed:{note_key}"

    def key_of(self, n: ProcessedNote) -> str:
        return self._redis_key(note_key(n.note, n.model))

    def lookup(self, note_keys: Sequence[str]) -> dict[str, ProducedOutput]:
        """Stored outputs of the notes (``fhir_bundle.note_key``) already processed by their model version."""
        if not note_keys:
            return {}
        try:
            raws = self.client.mget([self._redis_key(k) for k in note_keys])
        except redis.RedisError as err:
            raise StoreUnavailable(f"redis unavailable: {type(err).__name__}") from err
        return {k: ProducedOutput.model_validate_json(raw) for k, raw in zip(note_keys, raws) if raw}

    def processed_at(self, note_keys: Sequence[str]) -> dict[str, dt.datetime]:
        """``NoteProcessor``'s ``processed_at_lookup``: when each known note was first processed."""
        return {k: out.processed_at for k, out in self.lookup(note_keys).items()}

    def settle(self, notes: Sequence[ProcessedNote]) -> tuple[list[ProcessedNote], int]:
        """Record first productions and swap in stored output for repeats.

        Returns the notes to emit and how many were repeats. One round trip for the writes, one for the
        reads of the repeats.
        """
        if not notes:
            return [], 0
        keys = [self.key_of(n) for n in notes]
        try:
            pipe = self.client.pipeline(transaction=False)
            for k, n in zip(keys, notes):
                pipe.set(k, ProducedOutput.of(n).model_dump_json(), nx=True, ex=self.ttl_s)
            for k, n in zip(keys, notes):  # what each document produced, for a later retraction (productions())
                if n.action == "code":
                    pipe.sadd(self._document_key(n.note.document_id), k)
                    pipe.expire(self._document_key(n.note.document_id), self.ttl_s)
            created = pipe.execute()[: len(notes)]
            repeats = [i for i, ok in enumerate(created) if not ok]
            stored = self.client.mget([keys[i] for i in repeats]) if repeats else []
        except redis.RedisError as err:
            raise StoreUnavailable(f"redis unavailable: {type(err).__name__}") from err
        out, replaced = list(notes), []
        for i, raw in zip(repeats, stored):
            if raw is None:  # expired between the two calls: the fresh output stands
                continue
            first = ProducedOutput.model_validate_json(raw)
            if first.note_text_sha256 == _text_hash(notes[i]):
                out[i] = first.applied_to(notes[i])
            else:
                replaced.append(i)  # edited text under the same id/version: a new production
        if replaced:
            try:
                pipe = self.client.pipeline(transaction=False)
                for i in replaced:
                    pipe.set(keys[i], ProducedOutput.of(notes[i]).model_dump_json(), ex=self.ttl_s)
                pipe.execute()
            except redis.RedisError as err:
                raise StoreUnavailable(f"redis unavailable: {type(err).__name__}") from err
        return out, len(repeats) - len(replaced)

    def _document_key(self, document_id: str) -> str:
        return f"{self.prefix}document:{hashlib.sha256(document_id.encode('utf-8')).hexdigest()}"

    def productions(self, document_ids: Sequence[str]) -> dict[str, list[bytes]]:
        """``NoteProcessor``'s ``productions_lookup``: the Bundles each document produced (every version and
        model version whose record has not expired), to withdraw them when it turns out entered-in-error."""
        out: dict[str, list[bytes]] = {}
        try:
            for document_id in document_ids:
                keys = sorted(self.client.smembers(self._document_key(document_id)))
                raws = self.client.mget(keys) if keys else []
                bundles = [base64.b64decode(ProducedOutput.model_validate_json(raw).bundle_b64) for raw in raws if raw]
                if bundles:
                    out[document_id] = bundles
        except redis.RedisError as err:
            raise StoreUnavailable(f"redis unavailable: {type(err).__name__}") from err
        return out

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
