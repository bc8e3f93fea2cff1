"""The two ways processing a message can fail, and what each means for it.

- ``ProcessingError``: the message itself can never be processed. Its ``reason`` is what the dead-letter
  topic carries (``dlq.reason``). Raised by the engine's stages and by the FHIR text extraction both sides
  share (``schemas.fhir``); the trainer's FHIR importer turns it into a skipped note.
- ``TransientError``: a dependency is unavailable; the engine retries, never dead-letters.
"""

from __future__ import annotations


class ProcessingError(Exception):
    """The message can never be processed: it goes to the dead-letter topic with ``reason``.

    ``reason`` is a short stable code (e.g. ``not_json``, ``not_document_reference``, ``invalid_resource``,
    ``no_text``, ``bad_base64``, ``too_large``, ``bad_charset``, ``unsupported_content``, ``no_subject``,
    ``deid_failed``, ``invalid_output``);
    ``detail`` says where (field path), never the content.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TransientError(Exception):
    """A dependency is unavailable (Triton, Redis, the broker): retry with backoff, never dead-letter."""


def root_cause_name(err: BaseException) -> str:
    """The type name of the innermost cause (e.g. ``KafkaTimeoutError`` under a TransientError): what to log
    about a failure without its message, which may quote a server's reply."""
    while err.__cause__ is not None:
        err = err.__cause__
    return type(err).__name__
