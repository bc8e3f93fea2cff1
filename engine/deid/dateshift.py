"""Consistent per-patient date shifting: every date of a patient moves by the same secret offset, so
intervals survive ("seen 14 days after discharge") while the dates themselves do not."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_MONTH_RE = r"(?P<mon>[A-Za-z]{3,9})\.?"
_NUMERIC = re.compile(r"(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?:(?P=sep)(?P<y>\d{4}|\d{2}))?")
_ISO = re.compile(r"(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?P<rest>.*)", re.S)
_MONTH_YEAR_NUM = re.compile(r"(?P<m>\d{1,2})(?P<sep>[/-])(?P<y>\d{4})")
_SPELLED = [
    re.compile(rf"{_MONTH_RE}\s*(?:the\s+)?(?P<d>\d{{1,2}})(?P<ord>st|nd|rd|th)?(?:,?\s*(?:of\s+)?(?P<y>\d{{4}}|'\d\d))?"),
    re.compile(rf"(?P<d>\d{{1,2}})(?P<ord>st|nd|rd|th)?(?:\s+of\s+|\s*[-/ ]\s*){_MONTH_RE}(?:,?\s*[-/ ]?\s*(?P<y>\d{{4}}|'\d\d))?"),
]


def shift_days(salt: str, patient_key: str, max_days: int) -> int:
    """A stable offset in [-max_days, -1] U [1, max_days] from an HMAC of the patient key."""
    digest = hmac.new(salt.encode(), patient_key.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    n = int.from_bytes(digest[:8], "big")
    magnitude = 1 + n % max_days
    return magnitude if (n >> 32) & 1 else -magnitude


def _month(name: str) -> int | None:
    name = name.lower().rstrip(".")
    for i, m in enumerate(_MONTHS):
        if len(name) >= 3 and m.startswith(name[:3]) and (name == m or len(name) <= 4):
            return i + 1
    return None


def _ordinal(d: int) -> str:
    return "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")


def _year(y: str | None) -> int | None:
    if y is None:
        return None
    y = y.lstrip("'")
    return int(y) if len(y) == 4 else 2000 + int(y) if int(y) < 50 else 1900 + int(y)


def _fmt_year(new: int, original: str) -> str:
    if original.startswith("'"):
        return f"'{new % 100:02d}"
    return f"{new % 100:02d}" if len(original) == 2 else str(new)


def shift_date_text(text: str, days: int) -> str | None:
    """The date written in ``text`` moved by ``days``, in the same style; None when it cannot be parsed
    (the caller then writes the placeholder)."""
    try:
        return _shift(text.strip(), days)
    except (ValueError, OverflowError):
        return None


def _shift(s: str, days: int) -> str | None:
    delta = dt.timedelta(days=days)
    if m := _ISO.fullmatch(s):
        d = dt.date(int(m["y"]), int(m["m"]), int(m["d"])) + delta
        sep = m["sep"]
        return f"{d.year}{sep}{d.month:02d}{sep}{d.day:02d}{m['rest']}"
    if m := _MONTH_YEAR_NUM.fullmatch(s):
        d = dt.date(int(m["y"]), int(m["m"]), 15) + delta
        return f"{d.month:02d}{m['sep']}{d.year}" if len(m["m"]) == 2 else f"{d.month}{m['sep']}{d.year}"
    if m := _NUMERIC.fullmatch(s):
        a, b, y = int(m["a"]), int(m["b"]), _year(m["y"])
        month, day = (a, b) if a <= 12 else (b, a)
        d = dt.date(y or 2000, month, day) + delta
        first, second = (d.month, d.day) if a <= 12 else (d.day, d.month)
        pad = len(m["a"]) == 2
        out = f"{first:02d}{m['sep']}{second:02d}" if pad else f"{first}{m['sep']}{second}"
        return out + (f"{m['sep']}{_fmt_year(d.year, m['y'])}" if m["y"] else "")
    for pattern in _SPELLED:
        if (m := pattern.fullmatch(s)) and (month := _month(m["mon"])):
            y = _year(m["y"])
            d = dt.date(y or 2000, month, int(m["d"])) + delta
            name = _MONTHS[d.month - 1].title()
            if len(m["mon"].rstrip(".")) <= 4 and m["mon"].lower() != _MONTHS[month - 1]:
                name = name[:3]
            if m["mon"].isupper():
                name = name.upper()
            day = f"{d.day}{_ordinal(d.day)}" if m["ord"] else str(d.day)
            year = f", {_fmt_year(d.year, m['y'])}" if m["y"] else ""
            return f"{name} {day}{year}"
    return None
