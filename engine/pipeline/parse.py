"""Stage 1: message bytes -> a validated DocumentReference -> ``ParsedNote``.

R4 messages validate with ``fhir.resources.R4B`` (wire-compatible with R4 for DocumentReference), R5 with
the library's default classes. The note text comes from ``content[].attachment``:

- ``data`` with ``text/plain``: base64-decoded (the library does that) and decoded with the ``charset``
  parameter of ``contentType`` (UTF-8 when absent; a UTF-8 byte-order mark is dropped).
- ``data`` with ``text/html`` (or ``application/xhtml+xml``): reduced to its text (scripts and styles
  dropped, block elements become line breaks, entities unescaped). Evidence offsets then point into this
  reduced text.
- ``url`` only: ``unsupported_content``. The engine does not fetch URLs: it would need credentials for the
  EHR's binary store, would make processing depend on a second system's availability and on what that
  URL returns at the time (not what was sent), and turns every message into a possible SSRF probe.
  Send the text inline, or resolve the URL upstream.
- any other content type (PDF, RTF, images, ...): ``unsupported_content``.

With several attachments, plain text wins over HTML, then the first in document order.
Errors are ``ProcessingError`` with a stable reason; details name field paths, never values (PHI).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

from pydantic import ValidationError

from engine.fhir_release import resource_class
from engine.pipeline.types import ParsedNote, ProcessingError, SourceRecord

PLAIN_TYPES = ("text/plain",)
HTML_TYPES = ("text/html", "application/xhtml+xml")
# Raw-message guard before JSON parsing: base64 grows text by 4/3 and UTF-8 takes up to 4 bytes a char.
_RAW_BYTES_PER_CHAR = 6
_RAW_OVERHEAD_BYTES = 64 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")


def document_reference_class(fhir_version: str) -> type:
    """The fhir.resources DocumentReference class for a FHIR release ("R4" reads as R4B)."""
    return resource_class(fhir_version, "DocumentReference")


_ELEMENT_NAME = re.compile(r"^[a-z][A-Za-z0-9_]{0,63}$")  # FHIR element names are lowerCamelCase


def _location(error: dict) -> str:
    """A field path safe to publish: the sender chooses the keys of a JSON object, so a key not shaped like
    a FHIR element name (lowerCamelCase: "John Smith", "MRN 12345") is replaced by ``<key>``, never echoed."""
    return ".".join(str(p) if isinstance(p, int) or _ELEMENT_NAME.match(p) else "<key>" for p in error["loc"])


def error_locations(err: ValidationError, limit: int = 10) -> str:
    """Where validation failed and what kind of failure: ``loc.path (error_type)``. Never input values."""
    parts = [f"{_location(e) or '(resource)'} ({e['type']})" for e in err.errors()[:limit]]
    more = err.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_document_reference(record: SourceRecord, fhir_version: str = "R4", max_note_chars: int = 200_000) -> ParsedNote:
    """Validate one message as a FHIR DocumentReference and extract its text and routing fields."""
    if len(record.value) > max_note_chars * _RAW_BYTES_PER_CHAR + _RAW_OVERHEAD_BYTES:
        raise ProcessingError("too_large", f"message of {len(record.value)} bytes exceeds the limit for {max_note_chars} characters")
    try:
        obj = json.loads(record.value)
    except UnicodeDecodeError as err:
        raise ProcessingError("not_json", f"not UTF-8 at byte {err.start}") from None
    except json.JSONDecodeError as err:
        raise ProcessingError("not_json", f"line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(obj, dict):
        raise ProcessingError("not_document_reference", f"top-level JSON is {type(obj).__name__}, not an object")
    resource_type = obj.get("resourceType")
    if resource_type != "DocumentReference":
        shown = resource_type if isinstance(resource_type, str) and _SAFE_NAME.match(resource_type) else "missing or not a name"
        raise ProcessingError("not_document_reference", f"resourceType is {shown}")

    doc = _validate(obj, fhir_version)
    if not doc.id:
        raise ProcessingError("invalid_resource", "id (missing: needed to reference the note)")
    text = extract_text(doc.content or [])
    if len(text) > max_note_chars:
        raise ProcessingError("too_large", f"note text has {len(text)} characters, limit {max_note_chars}")
    if not text.strip():
        raise ProcessingError("no_text", "attachment text is empty")
    return ParsedNote(
        document_id=doc.id,
        document_version=doc.meta.versionId if doc.meta else None,
        subject=doc.subject.reference if doc.subject else None,
        encounter=_encounter(doc, fhir_version),
        date=doc.date,
        note_type=_note_type(doc),
        text=text,
        fhir_version=fhir_version,
    )


def _validate(obj: dict[str, Any], fhir_version: str) -> Any:
    cls = document_reference_class(fhir_version)
    try:
        return cls.model_validate(obj)
    except ValidationError as err:
        errors = err.errors()
        if errors and all(e["type"] == "base64_decode" for e in errors):
            raise ProcessingError("bad_base64", error_locations(err)) from None
        raise ProcessingError("invalid_resource", error_locations(err)) from None


def _encounter(doc: Any, fhir_version: str) -> str | None:
    context = doc.context
    if not context:
        return None
    if fhir_version == "R4":  # R4/R4B: context.encounter[0]
        refs = context.encounter or []
    else:  # R5: context is a list of references (Appointment | Encounter | EpisodeOfCare)
        refs = context
    refs = [r.reference for r in refs if r.reference]
    return next((r for r in refs if r.startswith("Encounter/") or "/Encounter/" in r), refs[0] if refs else None)


def _note_type(doc: Any) -> str | None:
    if doc.type and doc.type.coding:
        return doc.type.coding[0].code
    return None


def extract_text(contents: list[Any]) -> str:
    """The note text from ``DocumentReference.content``, by the rules in the module docstring."""
    if not contents:
        raise ProcessingError("no_text", "content (no attachments)")
    inline: list[tuple[int, str, dict[str, str], bytes]] = []  # (preference, where, content-type params, data)
    url_only: list[str] = []
    unsupported: list[str] = []
    for i, content in enumerate(contents):
        att = content.attachment
        where = f"content.{i}.attachment"
        if att.data is None:
            if att.url:
                url_only.append(where)
            continue
        media_type, params = _split_content_type(att.contentType)
        if media_type in PLAIN_TYPES:
            inline.append((0, where, params, att.data))
        elif media_type in HTML_TYPES:
            inline.append((1, where, params, att.data))
        else:
            shown = media_type if re.match(r"^[\w.+-]+/[\w.+-]+$", media_type or "") else "missing or malformed"
            unsupported.append(f"{where}.contentType ({shown})")
    if inline:
        preference, where, params, data = min(inline, key=lambda t: t[0])
        text = _decode(data, params, where)
        return html_to_text(text) if preference == 1 else text
    if url_only:
        raise ProcessingError("unsupported_content", f"{url_only[0]} has only a url; the engine does not fetch URLs")
    if unsupported:
        raise ProcessingError("unsupported_content", "; ".join(unsupported)[:300])
    raise ProcessingError("no_text", "content.attachment has neither data nor url")


def _split_content_type(content_type: str | None) -> tuple[str | None, dict[str, str]]:
    if not content_type:
        return None, {}
    media_type, *rest = [p.strip() for p in content_type.split(";")]
    params = {}
    for p in rest:
        key, sep, value = p.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return media_type.lower(), params


def _decode(data: bytes, params: dict[str, str], where: str) -> str:
    charset = params.get("charset", "utf-8").lower()
    if charset in ("utf-8", "utf8"):
        charset = "utf-8-sig"  # drops a byte-order mark, which would shift every offset by one
    try:
        return data.decode(charset)
    except LookupError:
        raise ProcessingError("bad_charset", f"{where}.contentType names an unknown charset") from None
    except UnicodeDecodeError as err:
        raise ProcessingError("bad_charset", f"{where}.data is not valid {charset} at byte {err.start}") from None


class _HtmlText(HTMLParser):
    """Collects the text of an HTML document: skips script/style, turns block elements into line breaks."""

    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "section", "article", "pre", "blockquote", "hr", "title"}
    SKIP = {"script", "style", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self._skip_depth += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Reduce HTML to its visible text with paragraph breaks (at most one blank line in a row)."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
