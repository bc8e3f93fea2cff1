"""HL7 v2 messages from files, as interface engines archive them: one message per segment block, messages
separated by blank lines or simply starting at each MSH segment. Segments may end in CR, LF or CRLF; MLLP
frame bytes (0x0B, 0x1C) and batch/file envelopes (FHS, BHS, BTS, FTS) are dropped.

Yields ``schemas.fhir.ndjson.FileEntry`` like the FHIR reader, so ``engine code`` treats both alike: ``raw`` is
the message with CR segment terminators, ``line`` the line of its MSH (1-based). Segments before any MSH
and messages over ``max_message_bytes`` become error entries (reading goes on); an unreadable file is an
``OSError`` for the caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from schemas.errors import ProcessingError
from schemas.fhir.ndjson import MAX_LINE_BYTES, FileEntry

ENVELOPE_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")
_FRAME = b"\x0b\x1c"


def is_hl7_file(path: Path) -> bool:
    """The file's first non-blank bytes are an MSH (or a batch/file header) segment."""
    with Path(path).open("rb") as f:
        head = f.read(4096)
    head = head[3:] if head.startswith(b"\xef\xbb\xbf") else head  # a UTF-8 byte-order mark
    head = head.lstrip(b"\x0b \t\r\n")
    return head[:3] in (b"MSH",) + ENVELOPE_SEGMENTS


def read_hl7_messages(path: Path, max_message_bytes: int = MAX_LINE_BYTES) -> Iterator[FileEntry]:
    """Every message of ``path`` in file order, and an error entry per unreadable block."""
    segments: list[bytes] = []
    start, size, orphan_at = 0, 0, -1

    def flush() -> Iterator[FileEntry]:
        if size > max_message_bytes:
            yield FileEntry(path, start, error=ProcessingError("too_large", f"message of {size} bytes exceeds the limit of {max_message_bytes}"))
        elif segments:
            yield FileEntry(path, start, raw=b"\r".join(segments) + b"\r")

    # latin-1 maps bytes 1:1, so universal newlines split CR, LF and CRLF without decoding anything
    with Path(path).open("r", encoding="latin-1", newline=None) as f:
        for lineno, line in enumerate(f, 1):
            segment = line.rstrip("\n").strip(_FRAME.decode("latin-1")).encode("latin-1")
            if lineno == 1 and segment.startswith(b"\xef\xbb\xbf"):
                segment = segment[3:]  # a UTF-8 byte-order mark before the first MSH
            if not segment.strip():  # a blank line ends a message
                yield from flush()
                segments, size = [], 0
                continue
            if segment[:3] in ENVELOPE_SEGMENTS:
                continue
            if segment.startswith(b"MSH"):
                yield from flush()
                segments, size, start = [], 0, lineno
            elif not segments and size == 0:
                if orphan_at != lineno - 1:  # one error per run of segments outside a message
                    yield FileEntry(path, lineno, error=ProcessingError("not_hl7", "segment before any MSH (message header)"))
                orphan_at = lineno
                continue
            size += len(segment) + 1
            if size <= max_message_bytes:
                segments.append(segment)
            else:
                segments = []  # too big: remember only the size, report it at the message's end
        yield from flush()
