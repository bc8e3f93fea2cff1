"""URLs and IP addresses (Presidio's own URL and IP recognizers are exact but ~10x slower on long notes)."""

from __future__ import annotations

import ipaddress
import re

from engine.deid.recognizers.base import RegexRecognizer, rule
from schemas.phi import PhiCategory as C

_TLDS = "com|org|net|edu|gov|mil|int|io|health|us|info|biz|co|me|app|care|clinic|hospital|uk|ca|de|eu"
_TAIL = r"[^\s<>\"'()\[\]{}]*[^\s<>\"'()\[\]{}.,;:!?]"  # a URL does not end in punctuation
URL = rule(
    rf"(?i:\b(?:https?|ftp)://{_TAIL}|\bwww\.{_TAIL}|(?<![\w.-])(?:[a-z0-9-]+\.)+(?:{_TLDS})\b(?:/{_TAIL})?)(?!@)",
    C.URL,
    accept=lambda m: "@" not in text_before(m),
)


def text_before(m: re.Match[str]) -> str:
    """The character before a bare-domain match: "@" means it is an e-mail's domain, not a URL."""
    return m.string[m.start() - 1 : m.start()] if m.start() else ""


def _valid_ip(m: re.Match[str]) -> bool:
    try:
        ipaddress.ip_address(m.group())
        return True
    except ValueError:
        return False


IPV4 = rule(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)", C.IP, accept=_valid_ip)
IPV6 = rule(r"(?<![\w:])(?=[0-9A-Fa-f:]*::|(?:[0-9A-Fa-f]{1,4}:){7})[0-9A-Fa-f:]{3,39}(?![\w:])", C.IP, accept=_valid_ip)


def web_recognizer() -> RegexRecognizer:
    return RegexRecognizer("DeidWebRecognizer", [URL, IPV4, IPV6])
