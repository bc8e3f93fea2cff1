"""Stage 1 for HL7 v2: one ER7 message (MDM^T02/T04/T06/T08/T10/T11 or ORU^R01) -> the same ``ParsedNote``
the FHIR parser produces. Everything after parsing is the FHIR path's.

Parsed with python-hl7 (``hl7``), which unescapes field values (``\\F\\``, ``\\S\\``, ``\\.br\\``, ``\\X..\\``).
The mapping (docs/hl7.md): patient from PID-3 with its assigning authority, encounter from PV1-19, document
id from TXA-12 (parent TXA-13 kept for addenda and replacements; ORU: OBR-3, else OBR-2), version from
MSH-10, status from the trigger event and TXA-19 (T11 cancel = ``entered-in-error``), docStatus from
TXA-17, authored time, document type TXA-2 (ORU: OBR-4), text from OBX-5 TX/FT/ST lines or ED attachments
(by the content-type rules FHIR attachments follow: ``schemas.fhir.attachment.choose_text``).

Errors are ``ProcessingError`` whose detail names the segment and field (``PID-3 missing``, ``OBX-5 of
OBX 2 not decodable as base64``), never a value: PID is all PHI. Only message type codes, which are short
table codes, are shown, and only when they look like one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from typing import Any

import hl7

from engine.pipeline.types import ParsedNote, SourceRecord
from schemas.errors import ProcessingError
from schemas.fhir.attachment import InlineAttachment, choose_text

# Trigger events that carry document content, and those that only notify (no text to code).
CONTENT_EVENTS = {"MDM": {"T02", "T04", "T06", "T08", "T10", "T11"}, "ORU": {"R01"}}
NOTIFY_ONLY_EVENTS = {"T01", "T03", "T05", "T07", "T09"}
TEXT_VALUE_TYPES = {"TX", "FT", "ST"}
# MSH-18 character set (HL7 table 0211) -> Python codec; absent means UTF-8 (v2.8's preferred set, and ASCII-safe).
CHARSETS = {"": "utf-8", "UNICODE UTF-8": "utf-8", "UNICODE": "utf-8", "ASCII": "ascii", "8859/1": "latin-1",
            "8859/2": "iso8859-2", "8859/5": "iso8859-5", "8859/7": "iso8859-7", "8859/9": "iso8859-9", "8859/15": "iso8859-15"}
# ED type of data / data subtype (HL7 tables 0191, 0291) -> MIME parts; a subtype that is a MIME type is taken as is.
_MIME_TYPES = {"TEXT": "text", "TX": "text", "AP": "application", "APPLICATION": "application", "IM": "image", "IMAGE": "image",
               "AU": "audio", "AUDIO": "audio", "MULTIPART": "multipart", "NS": "application"}
# TXA-17 completion status (table 0271) -> DocumentReference.docStatus; OBR-25 result status (table 0123) likewise.
TXA17_DOC_STATUS = {"AU": "final", "LA": "final", "DI": "preliminary", "DO": "preliminary", "IN": "preliminary",
                    "IP": "preliminary", "PA": "preliminary"}
OBR25_DOC_STATUS = {"F": "final", "C": "amended", "P": "preliminary", "I": "preliminary", "R": "preliminary", "S": "preliminary"}
_NO_HIGHLIGHT = {"H": "", "N": ""}  # \\H\\ / \\N\\ highlighting: python-hl7 would render it as "_"
_CODE = re.compile(r"^[A-Z0-9_]{1,7}$")
_ID_PART = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$")


def looks_like_hl7(value: bytes) -> bool:
    """ER7 starts with an MSH segment (MLLP framing bytes and leading whitespace aside)."""
    return value.lstrip(b"\x0b \t\r\n")[:3] == b"MSH"


def fhir_id(value: str, authority: str = "") -> str:
    """A FHIR id for an HL7 identifier and its assigning authority: ``AUTHORITY.VALUE`` (or ``VALUE`` without
    an authority) when both parts are letters, digits and dashes and fit 64 characters; otherwise
    ``sha256.`` + 56 hex digits of sha256(authority|value). The dot keeps authority and value apart, so
    distinct identifiers never share an id (docs/hl7.md)."""
    raw = f"{authority}.{value}" if authority else value
    if _ID_PART.match(value) and (not authority or _ID_PART.match(authority)) and len(raw) <= 64:
        return raw
    return "sha256." + hashlib.sha256(f"{authority}|{value}".encode("utf-8")).hexdigest()[:56]


def parse_hl7_message(record: SourceRecord, fhir_version: str = "R4", max_note_chars: int = 200_000) -> ParsedNote:
    """Map one ER7 message to a ``ParsedNote`` (module docstring), or raise ``ProcessingError``."""
    if len(record.value) > max_note_chars * 6 + 64 * 1024:  # same raw bound as the FHIR parser (base64, UTF-8)
        raise ProcessingError("too_large", f"message of {len(record.value)} bytes exceeds the limit for {max_note_chars} characters")
    msg = _parse(record.value)
    kind, event = _message_type(msg)
    if kind == "MDM":
        note = _mdm(msg, event, fhir_version)
    else:
        note = _oru(msg, fhir_version)
    if len(note.text) > max_note_chars:
        raise ProcessingError("too_large", f"note text has {len(note.text)} characters, limit {max_note_chars}")
    if note.status == "current" and not note.text.strip():
        raise ProcessingError("no_text", "OBX-5 (no TX/FT/ST text or ED attachment with content)")
    return note


def _parse(raw: bytes) -> Any:
    if not looks_like_hl7(raw):
        raise ProcessingError("not_hl7", "message does not start with an MSH segment")
    raw = raw.strip(b"\x0b\x1c \t\r\n")  # MLLP frame bytes, as some archives keep them
    first = re.split(rb"[\r\n]", raw, maxsplit=1)[0]
    if len(first) < 8:
        raise ProcessingError("not_hl7", "MSH-1/MSH-2 (separators) missing")
    fields = first.split(first[3:4])
    charset = fields[17].split(fields[1][1:2] or b"~")[0].strip().upper() if len(fields) > 17 else b""
    codec = CHARSETS.get(charset.decode("ascii", "replace"))
    if codec is None:
        raise ProcessingError("bad_charset", "MSH-18 names a character set the engine does not read")
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as err:
        raise ProcessingError("bad_charset", f"message is not valid {codec} (MSH-18) at byte {err.start}") from None
    text = text.replace("\r\n", "\r").replace("\n", "\r")  # archives and topics often use LF between segments
    try:
        return hl7.parse(text)
    except Exception:  # the library's messages may quote the message: never pass them on
        raise ProcessingError("not_hl7", "ER7 structure unreadable (MSH separators)") from None


def _get(seg: Any, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    """A field value, unescaped, or "" when absent (python-hl7 raises IndexError past a leaf)."""
    try:
        return str(seg.extract_field(1, field, rep, comp, sub)).strip()
    except (IndexError, KeyError, TypeError):
        return ""


def _segment(msg: Any, name: str, required: bool = True) -> Any:
    try:
        return msg.segment(name)
    except KeyError:
        if required:
            raise ProcessingError("invalid_message", f"{name} segment missing") from None
        return None


def _message_type(msg: Any) -> tuple[str, str]:
    msh = _segment(msg, "MSH")
    kind, event = _get(msh, 9, 1, 1).upper(), _get(msh, 9, 1, 2).upper()
    if kind in CONTENT_EVENTS and event in CONTENT_EVENTS[kind]:
        return kind, event
    shown = f"{kind}^{event}" if _CODE.match(kind or "-") and _CODE.match(event or "-") else "missing or malformed"
    if kind == "MDM" and event in NOTIFY_ONLY_EVENTS:
        raise ProcessingError("unsupported_message", f"MSH-9 is {shown}: a notification without document content")
    raise ProcessingError("unsupported_message", f"MSH-9 is {shown}; the engine reads MDM^T02/T04/T06/T08/T10/T11 and ORU^R01")


def _patient(msg: Any) -> str:
    pid = _segment(msg, "PID")
    candidates = []
    try:
        reps = len(pid(3)) if len(pid) > 3 else 0
    except (IndexError, TypeError):
        reps = 0
    for r in range(1, reps + 1):
        value = _get(pid, 3, r, 1)
        if value:
            authority = _get(pid, 3, r, 4, 1) or _get(pid, 3, r, 4, 2)
            candidates.append((_get(pid, 3, r, 5).upper() != "MR", value, authority))  # the MRN first
    if not candidates:
        raise ProcessingError("invalid_message", "PID-3 missing")
    _, value, authority = min(candidates, key=lambda c: c[0])
    return f"Patient/{fhir_id(value, authority)}"


def _encounter(msg: Any) -> str | None:
    pv1 = _segment(msg, "PV1", required=False)
    value = _get(pv1, 19, 1, 1) if pv1 is not None else ""
    if not value:
        return None
    return f"Encounter/{fhir_id(value, _get(pv1, 19, 1, 4, 1) or _get(pv1, 19, 1, 4, 2))}"


def _entity_id(seg: Any, field: int) -> str | None:
    """An EI field (entity id ^ namespace id ^ universal id) as a FHIR id, or None when empty."""
    value = _get(seg, field, 1, 1)
    return fhir_id(value, _get(seg, field, 1, 2) or _get(seg, field, 1, 3)) if value else None


def _datetime(seg: Any, field: int, name: str) -> dt.datetime | None:
    """An HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); naive when the sender gave no offset."""
    value = _get(seg, field, 1, 1)
    if not value:
        return None
    m = _DTM.match(value)
    if not m:
        raise ProcessingError("invalid_message", f"{name} is not an HL7 date/time")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        when = dt.datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0), int((frac or "0").ljust(6, "0")[:6]))
    except ValueError:
        raise ProcessingError("invalid_message", f"{name} is not a valid date/time") from None
    if tz:
        sign = 1 if tz[0] == "+" else -1
        when = when.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5]))))
    return when


def _version(msg: Any) -> str:
    """MSH-10, the message control id, as the note version: a resent message (same id) is a repeat with identical
    output; every new message about the document (T04, T08, T11, a corrected ORU) is a new version, as a new
    ``meta.versionId`` is for FHIR. Required: without it a cancel could not be told from what it cancels."""
    control_id = _get(_segment(msg, "MSH"), 10)
    if not control_id:
        raise ProcessingError("invalid_message", "MSH-10 missing (message control id)")
    return fhir_id(control_id)


def _mdm(msg: Any, event: str, fhir_version: str) -> ParsedNote:
    txa = _segment(msg, "TXA")
    document, parent = _entity_id(txa, 12), _entity_id(txa, 13)
    if document is None:
        raise ProcessingError("invalid_message", "TXA-12 missing")
    availability = _get(txa, 19).upper()
    status = "entered-in-error" if event == "T11" or availability == "CA" else "superseded" if availability == "OB" else "current"
    when = _datetime(txa, 6, "TXA-6") or _datetime(txa, 4, "TXA-4") or _datetime(_segment(msg, "MSH"), 7, "MSH-7")
    return ParsedNote(
        document_id=document,  # an addendum (T06) or replacement (T10) has its own number; TXA-13 names the parent
        document_version=_version(msg),
        subject=_patient(msg),
        encounter=_encounter(msg),
        date=when,
        note_type=_get(txa, 2, 1, 1) or None,
        text=_text(msg) if status == "current" else "",  # a note that is not coded needs no text
        fhir_version=fhir_version,
        status=status,
        doc_status=TXA17_DOC_STATUS.get(_get(txa, 17).upper()),
        source_format="hl7v2",
        parent_document=f"DocumentReference/{parent}" if parent else None,
    )


def _oru(msg: Any, fhir_version: str) -> ParsedNote:
    try:
        orders = msg.segments("OBR")
    except KeyError:
        raise ProcessingError("invalid_message", "OBR segment missing") from None
    if len(orders) > 1:
        raise ProcessingError("unsupported_message", f"ORU^R01 with {len(orders)} OBR segments: one report per message")
    obr = orders[0]
    document_id = _entity_id(obr, 3) or _entity_id(obr, 2)
    if document_id is None:
        raise ProcessingError("invalid_message", "OBR-3 and OBR-2 missing (report id)")
    result_status = _get(obr, 25).upper()
    status = "entered-in-error" if result_status == "W" else "current"  # W: posted as wrong (e.g. wrong patient)
    return ParsedNote(
        document_id=document_id,
        document_version=_version(msg),
        subject=_patient(msg),
        encounter=_encounter(msg),
        date=_datetime(obr, 7, "OBR-7") or _datetime(_segment(msg, "MSH"), 7, "MSH-7"),
        note_type=_get(obr, 4, 1, 1) or None,
        text=_text(msg) if status == "current" else "",
        fhir_version=fhir_version,
        status=status,
        doc_status=OBR25_DOC_STATUS.get(result_status),
        source_format="hl7v2",
    )


def _text(msg: Any) -> str:
    """TX/FT/ST lines of every OBX in order (repetitions are lines); without any, the ED attachments."""
    try:
        observations = msg.segments("OBX")
    except KeyError:
        return ""
    lines: list[str] = []
    attachments: list[InlineAttachment] = []
    for n, obx in enumerate(observations, 1):
        value_type = _get(obx, 2).upper()
        if value_type in TEXT_VALUE_TYPES:
            lines.extend(_text_lines(msg, obx))
        elif value_type == "ED":
            attachments.append(_attachment(obx, n))
    if lines:
        return "\n".join(lines)
    return choose_text(attachments) if attachments else ""


def _text_lines(msg: Any, obx: Any) -> list[str]:
    """OBX-5 repetitions as lines: the whole repetition (a stray ^ or & in free text stays text), unescaped;
    ``\\.br\\`` and ``\\.sp\\`` become line breaks."""
    if len(obx) <= 5:
        return []
    field = obx(5)
    reps = [field] if isinstance(field, str) else list(field)
    return [msg.unescape(str(rep), _NO_HIGHLIGHT).replace("\r\n", "\n").replace("\r", "\n") for rep in reps]


def _attachment(obx: Any, n: int) -> InlineAttachment:
    """An ED value (source ^ type of data ^ data subtype ^ encoding ^ data) as an inline attachment."""
    where = f"OBX-5 of OBX {n}"
    kind, subtype, encoding, data = (_get(obx, 5, 1, c) for c in (2, 3, 4, 5))
    if "/" in subtype:
        content_type = subtype.lower()
    else:
        content_type = f"{_MIME_TYPES.get(kind.upper(), kind.lower())}/{subtype.lower()}" if kind and subtype else None
    encoding = encoding.upper()
    if encoding in ("BASE64", "B64"):
        try:
            payload = base64.b64decode(re.sub(r"\s+", "", data), validate=True)
        except (binascii.Error, ValueError):
            raise ProcessingError("bad_base64", f"{where} not decodable as base64") from None
    elif encoding in ("A", ""):  # ASCII / no encoding: the (already unescaped) value is the text
        payload = data.encode("utf-8")
    elif encoding == "HEX":
        try:
            payload = bytes.fromhex(data)
        except ValueError:
            raise ProcessingError("bad_base64", f"{where} not decodable as hex") from None
    else:
        raise ProcessingError("unsupported_content", f"{where}: OBX-5.4 encoding is not Base64, Hex or A")
    return InlineAttachment(where, content_type, payload)
