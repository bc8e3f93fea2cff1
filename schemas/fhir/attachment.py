"""A note's text from ``DocumentReference.content[].attachment``: the one extraction the engine (stage 1) and the
trainer's FHIR importer share, so training and serving read attachments identically.

- ``data`` with ``text/plain``: base64-decoded (fhir.resources does that) and decoded with the ``charset``
  parameter of ``contentType`` (UTF-8 when absent; a UTF-8 byte-order mark is dropped).
- ``data`` with ``text/html`` (or ``application/xhtml+xml``): reduced to its text (scripts and styles
  dropped, block elements become line breaks, entities unescaped). Evidence offsets then point into this
  reduced text.
- ``url`` only: ``unsupported_content``. The engine does not fetch URLs: it would need credentials for the
  EHR's binary store, would make processing depend on a second system's availability and on what that
  URL returns at the time (not what was sent), and turns every message into a possible SSRF probe.
  Send the text inline, or resolve the URL upstream.
- any other content type (PDF, RTF, images, ...): ``unsupported_content``.

With several attachments, plain text wins over HTML, then the first in document order. Errors are
``ProcessingError`` with a stable reason; details name field paths, never values (PHI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from schemas.errors import ProcessingError

PLAIN_TYPES = ("text/plain",)
HTML_TYPES = ("text/html", "application/xhtml+xml")


def extract_text(contents: list[Any]) -> str:
    """The note text from ``DocumentReference.content``, by the rules in the module docstring."""
    if not contents:
        raise ProcessingError("no_text", "content (no attachments)")
    inline: list[InlineAttachment] = []
    url_only: list[str] = []
    for i, content in enumerate(contents):
        att = content.attachment
        where = f"content.{i}.attachment"
        if att.data is not None:
            inline.append(InlineAttachment(where, att.contentType, att.data))
        elif att.url:
            url_only.append(where)
    return choose_text(inline, url_only)


@dataclass(frozen=True)
class InlineAttachment:
    """Inline attachment bytes with their declared content type, from any source format (FHIR
    ``attachment.data``, HL7 v2 ``OBX-5`` ED); ``where`` names the field in errors, never the content."""

    where: str
    content_type: str | None
    data: bytes


def choose_text(inline: list[InlineAttachment], url_only: list[str] = ()) -> str:
    """The text of the preferred inline attachment (plain, then HTML, then document order), or the
    ``ProcessingError`` the module docstring describes. Shared by the FHIR and HL7 v2 parsers."""
    candidates: list[tuple[int, str, dict[str, str], bytes]] = []  # (preference, where, content-type params, data)
    unsupported: list[str] = []
    for att in inline:
        media_type, params = _split_content_type(att.content_type)
        if media_type in PLAIN_TYPES:
            candidates.append((0, att.where, params, att.data))
        elif media_type in HTML_TYPES:
            candidates.append((1, att.where, params, att.data))
        else:
            shown = media_type if re.match(r"^[\w.+-]+/[\w.+-]+$", media_type or "") else "missing or malformed"
            unsupported.append(f"{att.where}.contentType ({shown})")
    if candidates:
        preference, where, params, data = min(candidates, key=lambda t: t[0])
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
