"""A note's original text at display time, from the hospital's systems: the worklist keeps offsets, never text.

- ``KafkaNoteTexts``: the input record the engine consumed (topic, partition, offset on the worklist entry),
  read again without a consumer group;
- ``FhirNoteTexts``: the FHIR server's DocumentReference, read by id and version (``vread``).

Either way the resource goes through the engine's own parse (``parse_document_reference``): the same
attachment rules give the same text, so the evidence offsets land on the same characters. The result says
plainly when the text cannot be had or is another version than the one the offsets refer to; the coder can
still decide. Text is never cached, logged or put in an error message.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from engine.infra.kafka import consumer_kwargs
from engine.pipeline.parse import parse_document_reference
from engine.pipeline.types import SourceRecord
from schemas.envelopes import NoteSuggestions
from schemas.errors import ProcessingError
from schemas.settings import EngineSettings

Status = Literal["ok", "unavailable", "version_mismatch"]


@dataclass(frozen=True)
class NoteText:
    document_reference: str
    document_version: str | None  # the version the suggestions' offsets refer to
    status: Status  # ok: ``text`` is that version; version_mismatch: ``text`` is another one (no highlights)
    text: str | None
    message: str  # for the coder, when status is not ok (or the version could not be checked)
    source: str  # where it was read (topic/partition/offset, or the FHIR URL path): no text, no PHI

    def as_dict(self) -> dict:
        return asdict(self)


class NoteTexts(Protocol):
    def fetch(self, note: NoteSuggestions) -> NoteText: ...

    def close(self) -> None: ...


def _checked(note: NoteSuggestions, raw: bytes, fhir_version: str, max_chars: int, source: str) -> NoteText:
    """Parse ``raw`` as the engine does and compare it with the note the suggestions came from."""
    found = lambda status, text, message: NoteText(note.document_reference, note.document_version, status, text, message, source)
    try:
        parsed = parse_document_reference(SourceRecord(value=raw), fhir_version, max_chars)
    except ProcessingError as err:
        return found("unavailable", None, f"the resource at {source} is not a readable DocumentReference ({err.reason})")
    if parsed.reference != note.document_reference:
        return found("unavailable", None, f"{source} holds {parsed.reference}, not {note.document_reference}")
    if note.document_version is None:
        return found("ok", parsed.text, "the engine recorded no version for this note: the text shown could not be checked")
    if parsed.document_version != note.document_version:
        return found("version_mismatch", parsed.text,
                     f"this is version {parsed.document_version or '(none)'} of the note; the suggestions refer to version "
                     f"{note.document_version}, so the evidence cannot be highlighted")
    return found("ok", parsed.text, "")


class KafkaNoteTexts:
    """Reads the record at the note's source position (one consumer outside any group, used under a lock)."""

    def __init__(self, settings: EngineSettings, timeout_s: float = 5.0) -> None:
        self.fhir_version, self.max_chars, self.timeout_s = settings.fhir_version, settings.max_note_chars, timeout_s
        kw = consumer_kwargs(settings.kafka)
        kw.update(group_id=None, enable_auto_commit=False, client_id=settings.kafka.client_id + "-workbench")
        self._kw = kw
        self._consumer: KafkaConsumer | None = None
        self._lock = threading.Lock()

    def fetch(self, note: NoteSuggestions) -> NoteText:
        pos = note.source
        if pos is None:
            return NoteText(note.document_reference, note.document_version, "unavailable", None,
                            "the worklist does not say where the engine read this note (stored before positions were kept, "
                            "or coded from a file): configure the FHIR text source", "-")
        where = f"{pos.topic}/{pos.partition}/{pos.offset}"
        try:
            with self._lock:
                raw = self._read(pos.topic, pos.partition, pos.offset)
        except KafkaError as err:
            self._reset()
            return NoteText(note.document_reference, note.document_version, "unavailable", None,
                            f"the input topic could not be read ({type(err).__name__}); try again", where)
        if raw is None:
            return NoteText(note.document_reference, note.document_version, "unavailable", None,
                            f"the record at {where} is no longer on the topic (retention)", where)
        return _checked(note, raw, self.fhir_version, self.max_chars, where)

    def _read(self, topic: str, partition: int, offset: int) -> bytes | None:
        if self._consumer is None:
            self._consumer = KafkaConsumer(**self._kw)
        consumer = self._consumer
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        if offset < consumer.beginning_offsets([tp])[tp]:
            return None
        consumer.seek(tp, offset)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200, max_records=1).values():
                for r in records:
                    return r.value if r.offset == offset else None  # compacted away: the next record came instead
        return None

    def _reset(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close(autocommit=False)
                self._consumer = None

    def close(self) -> None:
        self._reset()


class FhirNoteTexts:
    """``GET [base]/DocumentReference/<id>/_history/<version>`` (the current version when none was recorded,
    or when that version is gone: then the page shows the current one unhighlighted and says so)."""

    def __init__(self, settings: EngineSettings) -> None:
        wb = settings.workbench
        headers = {"Accept": "application/fhir+json"}
        if wb.fhir_token is not None and wb.fhir_token.get_secret_value():
            headers["Authorization"] = f"Bearer {wb.fhir_token.get_secret_value()}"
        self.base = (wb.fhir_base_url or "").rstrip("/")
        self.fhir_version, self.max_chars = settings.fhir_version, settings.max_note_chars
        self.client = httpx.Client(headers=headers, timeout=wb.fhir_timeout_s, verify=str(wb.fhir_ca_certs) if wb.fhir_ca_certs else True)

    def fetch(self, note: NoteSuggestions) -> NoteText:
        path = note.document_reference
        if note.document_version is not None:
            versioned = f"{path}/_history/{note.document_version}"
            got = self._get(note, versioned)
            if not isinstance(got, int):
                return got
            if got not in (404, 410):
                return self._refused(note, versioned, got)
        got = self._get(note, path)
        return self._refused(note, path, got) if isinstance(got, int) else got

    def _get(self, note: NoteSuggestions, path: str) -> NoteText | int:
        """The checked text, or the HTTP status when it is not 200."""
        try:
            resp = self.client.get(f"{self.base}/{path}")
        except httpx.HTTPError as err:
            return NoteText(note.document_reference, note.document_version, "unavailable", None,
                            f"the FHIR server could not be reached ({type(err).__name__}); try again", path)
        if resp.status_code != 200:
            return resp.status_code
        return _checked(note, resp.content, self.fhir_version, self.max_chars, path)

    def _refused(self, note: NoteSuggestions, path: str, status: int) -> NoteText:
        why = {401: "refused the workbench's credentials", 403: "refused the workbench's credentials",
               404: "has no such DocumentReference", 410: "says the DocumentReference was deleted"}.get(status, f"answered HTTP {status}")
        return NoteText(note.document_reference, note.document_version, "unavailable", None, f"the FHIR server {why} ({path})", path)

    def close(self) -> None:
        self.client.close()


def note_texts(settings: EngineSettings) -> NoteTexts:
    return FhirNoteTexts(settings) if settings.workbench.text_source == "fhir" else KafkaNoteTexts(settings)
