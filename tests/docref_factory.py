"""Test helpers around DocumentReference messages (the builder itself is ``trainer.data.docref``):
source records, collection Bundles, MTSamples texts. Reused by the pipeline, service and end-to-end tests."""

from __future__ import annotations

import itertools
import json
from typing import Any, Iterable

from engine.pipeline.types import SourceRecord
from schemas.cli import default_data_dir
from schemas.envelopes import SourcePosition
from trainer.data.docref import (  # noqa: F401 (re-exported for tests)
    LOINC,
    PROGRESS_NOTE,
    b64,
    document_reference,
    from_note_record,
)
from trainer.data.importers.mtsamples import read_mtsamples


def to_bytes(resource: dict[str, Any]) -> bytes:
    return json.dumps(resource).encode("utf-8")


def source_record(resource: dict[str, Any] | bytes, offset: int | None = None, topic: str = "ehr.documentreference") -> SourceRecord:
    value = resource if isinstance(resource, bytes) else to_bytes(resource)
    position = SourcePosition(topic=topic, partition=0, offset=offset) if offset is not None else None
    return SourceRecord(value=value, position=position)


def collection_bundle(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A FHIR Bundle holding the resources (as an EHR export would), for ``engine code`` input."""
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def mtsamples_texts(n: int, min_chars: int = 200) -> list[str]:
    """The first ``n`` distinct MTSamples transcriptions of at least ``min_chars`` characters (real-looking
    notes) from $ICDCODER_DATA_DIR, read by the project's importer."""
    records = read_mtsamples(default_data_dir() / "mtsamples" / "mtsamples.csv")
    long_enough = (record.text for record in records if len(record.text) >= min_chars)
    return list(itertools.islice(long_enough, n))
