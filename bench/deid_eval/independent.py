"""Evaluation sets written independently of everything the de-identifier was built or trained from.

- ``handwritten(split)``: short clinical notes written by hand with synthetic PHI, annotated inline
  (``data/handwritten_{dev,dev2,test,test2,test3,test4}.txt``: ``[[LABEL|text]]``). ``dev`` and ``dev2`` (dictation, all caps,
  portal messages, scanned forms, non-US formats; issue 14, round 4) are used to look at errors while the rules and
  model are built; ``test``, ``test2``, ``test3`` and ``test4`` (other note types and formats, written later; ``test3`` in
  round 5, ``test4`` in round 7 by a writer who never read the recognisers) are held out.
- ``mimesis_notes(n, seed)``: notes from the ``mimesis`` generator (not faker, which trains the model) in
  17 locales, with templates and value formats of their own (not ``trainer.deid_model.templates``).

Gold labels are finer than the de-identifier's categories: FACILITY (hospitals, clinics, employers,
schools) is redacted as ``[ADDRESS]`` but reported on its own row. Nothing here is imported by the trainer.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from functools import lru_cache
from pathlib import Path

from bench.deid_eval.evaluation import GoldNote
from schemas.phi import PhiCategory, PhiSpan

DATA = Path(__file__).parent / "data"
LABEL_CATEGORY: dict[str, PhiCategory] = {c.value: c for c in PhiCategory} | {"FACILITY": PhiCategory.ADDRESS}
HANDWRITTEN_SPLITS = ("dev", "dev2", "test", "test2", "test3", "test4")
HELD_OUT_SPLITS = ("test", "test2", "test3", "test4")  # never used to look at errors: report-only
_MARK = re.compile(r"\[\[([A-Z]+)\|(.+?)\]\]", re.S)


def parse_marked(marked: str, source: str) -> GoldNote:
    """``"Seen by [[NAME|Ann Lee]]."`` -> GoldNote("Seen by Ann Lee.", NAME span, label "NAME")."""
    text, spans, labels, pos = [], [], [], 0
    length = 0
    for m in _MARK.finditer(marked):
        before = marked[pos : m.start()]
        text.append(before)
        length += len(before)
        label, value = m.group(1), m.group(2)
        if label not in LABEL_CATEGORY:
            raise ValueError(f"{source}: unknown PHI label {label!r} in {m.group()!r}")
        spans.append(PhiSpan(start=length, end=length + len(value), category=LABEL_CATEGORY[label]))
        labels.append(label)
        text.append(value)
        length += len(value)
        pos = m.end()
    text.append(marked[pos:])
    joined = "".join(text)
    if "[[" in joined or "]]" in joined:
        raise ValueError(f"{source}: unbalanced PHI markup")
    return GoldNote(text=joined, phi=tuple(spans), source=source, labels=tuple(labels))


@lru_cache(maxsize=8)
def handwritten(split: str) -> tuple[GoldNote, ...]:
    if split not in HANDWRITTEN_SPLITS:
        raise ValueError(f"split must be one of {HANDWRITTEN_SPLITS}, not {split!r}")
    path = DATA / f"handwritten_{split}.txt"
    body = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))
    chunks = [c.strip("\n") for c in body.split("\n=====\n")]
    return tuple(parse_marked(c + "\n", f"{path.name} note {i}") for i, c in enumerate(c for c in chunks if c.strip()))


# -- the mimesis generator --------------------------------------------------------------------------------
LOCALES = "en en en en-gb en-au en-ca es es-mx de it fr pt-br pl nl tr fi sv da cs hu".split()
_WORD_NAMES = "Bill Rose Sterling Joy Pat Frank Hunter Summer Chance Drew Forrest Lane Reed Moss Gay Major".split()


class _Values:
    """PHI values from mimesis, formatted by this module's own code."""

    def __init__(self, rng: random.Random) -> None:
        from mimesis import Address, Finance, Locale, Person

        self.rng = rng
        seed = rng.randrange(2**31)
        self.people = {loc: Person(Locale(loc), seed=seed + i) for i, loc in enumerate(sorted(set(LOCALES)))}
        self.places = {loc: Address(Locale(loc), seed=seed + 100 + i) for i, loc in enumerate(sorted(set(LOCALES)))}
        self.finance = Finance(Locale.EN, seed=seed + 999)

    def _person(self):
        return self.people[self.rng.choice(LOCALES)]

    def first(self) -> str:
        return self.rng.choice(_WORD_NAMES) if self.rng.random() < 0.1 else self._person().first_name()

    def last(self) -> str:
        return self._person().last_name()

    def full(self) -> str:
        r = self.rng
        f, last = self.first(), self.last()
        form = r.choice((f"{f} {last}", f"{f} {last}", f"{f[0]} {last}", f"{last.upper()}, {f.upper()}", f"{f.lower()} {last.lower()}",
                         f"{f} {r.choice('ABCDEFGHJKLMNPRSTW')} {last}", f"{last} {f}"))
        return form

    def place(self) -> str:
        return self.places[self.rng.choice(LOCALES)].city()

    def us_town(self) -> str:
        return self.places["en"].city()

    def street(self) -> str:
        r = self.rng
        if r.random() < 0.2:
            return r.choice((f"Rt {r.randint(1, 12)}, Box {r.randint(10, 400)}", f"Star Route {r.randint(1, 5)}", "General Delivery"))
        return self.places["en"].address()

    def abroad(self) -> str:
        loc = self.rng.choice([x for x in LOCALES if not x.startswith("en")])
        a = self.places[loc]
        return f"{a.address()}, {a.postal_code()} {a.city()}"

    def zip(self) -> str:
        return self.places["en"].zip_code()

    def facility(self) -> str:
        r = self.rng
        return r.choice((f"{self.last()} Memorial", f"{self.us_town()} Regional Hospital", f"{self.last()} Eye Associates",
                         f"Our Lady of {self.us_town()} Hospital", f"{self.us_town()} Senior Living", f"{self.last()} & {self.last()} Dental",
                         f"{self.us_town()} Free Clinic", f"{self.last()} House"))

    def company(self) -> str:
        return self.finance.company()

    def date(self) -> str:
        r = self.rng
        d = dt.date(1925, 1, 1) + dt.timedelta(days=r.randint(0, 36000))
        mon = d.strftime("%b")
        return r.choice((f"{d.month}/{d.day}/{d.year}", f"{d.month}-{d.day}-{d.year % 100:02d}", f"{d:%Y-%m-%d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
                         f"{d.day:02d}{mon.upper()}{d.year}", f"{mon}-{d.day:02d}", f"{d.month}/{d.day}", f"{d:%B} {d.day}", f"{d.day} {mon} {d.year}",
                         f"{d:%d.%m.%Y}", f"{mon}. {d.day}", f"{d:%Y/%m/%d}", f"{d:%m%d%Y}"))

    def age(self) -> str:
        r = self.rng
        n = r.randint(90, 106)
        words = {90: "ninety", 91: "ninety-one", 92: "ninety-two", 93: "ninety-three", 94: "ninety-four", 95: "ninety-five",
                 96: "ninety-six", 97: "ninety-seven", 98: "ninety-eight", 99: "ninety-nine", 100: "one hundred"}
        return words.get(n, str(n)) if r.random() < 0.3 else str(n)

    def phone(self) -> str:
        r = self.rng
        if r.random() < 0.3:
            return self._person().telephone()
        a, b, c = r.randint(201, 989), r.randint(200, 999), r.randint(0, 9999)
        return r.choice((f"{b}-{c:04d}", f"{a}-{b}-{c:04d}", f"({a}){b}-{c:04d}", f"{a}/{b}-{c:04d}", f"{a}.{b}.{c:04d}",
                         f"{a}-{b}-{c:04d} x {r.randint(10, 999)}", f"+1.{a}.{b}.{c:04d}", f"+52 {r.randint(10, 99)} {r.randint(1000, 9999)} {c:04d}"))

    def ident(self) -> str:
        r = self.rng
        digits = lambda n: "".join(r.choice("0123456789") for _ in range(n))  # noqa: E731
        letters = lambda n: "".join(r.choice("ACDEFGHJKMNPQRTUVWXY") for _ in range(n))  # noqa: E731
        return r.choice((digits(r.randint(6, 9)), f"{digits(1)}{letters(1)}{digits(1)}{letters(1)}-{letters(1)}{digits(2)}-{letters(2)}{digits(2)}",
                         f"{letters(2)}{digits(7)}", f"{letters(1)}{digits(3)}-{digits(4)}-{digits(2)}", f"{digits(4)} {digits(4)} {digits(4)}",
                         f"{letters(3)}{digits(6)}{letters(1)}", f"{digits(3)}-{digits(3)}-{digits(3)}"))

    def email(self) -> str:
        return self._person().email()


_S = {  # slot -> (method, label)
    "NAME": ("full", "NAME"), "FIRST": ("first", "NAME"), "LAST": ("last", "NAME"), "PLACE": ("place", "ADDRESS"),
    "TOWN": ("us_town", "ADDRESS"), "STREET": ("street", "ADDRESS"), "ABROAD": ("abroad", "ADDRESS"), "ZIP": ("zip", "ADDRESS"),
    "FACILITY": ("facility", "FACILITY"), "COMPANY": ("company", "FACILITY"), "DATE": ("date", "DATE"), "AGE": ("age", "AGE"),
    "PHONE": ("phone", "PHONE"), "ID": ("ident", "ID"), "EMAIL": ("email", "EMAIL"),
}
MIMESIS_TEMPLATES = (
    "{NAME} came in accompanied by {FIRST}, her grandson.",
    "Collateral obtained from {NAME} by telephone ({PHONE}).",
    "The pt's brother-in-law, {FIRST} {LAST}, witnessed the event.",
    "Husband {FIRST} at bedside; he prefers text messages to {PHONE}.",
    "{LAST} tolerated the procedure without complication.",
    "Pt stated that {FIRST} handles her finances.",
    "Seen jointly with {NAME} (social work).",
    "Message from {FIRST}: \"mom is more confused tonight\".",
    "Primary care is {NAME} in {TOWN}.",
    "Patient identifier {ID}; secondary identifier {ID}.",
    "Medicare beneficiary no. {ID}.",
    "Implanted stimulator, serial {ID}.",
    "Insurance card shows {ID}.",
    "She is {AGE} and still lives independently.",
    "Centenarian? No, he is {AGE}.",
    "{AGE}-yr-old with syncope.",
    "Home: {STREET}, {TOWN} {ZIP}.",
    "Postal address {ABROAD}.",
    "Originally from {PLACE}; moved here {DATE}.",
    "Spent the winter near {PLACE} with family.",
    "Transferred from {FACILITY} this afternoon.",
    "Was at {FACILITY} until {DATE}.",
    "Formerly employed at {COMPANY}.",
    "Occupation: warehouse associate, {COMPANY}.",
    "Event occurred {DATE}; seen by urgent care {DATE}.",
    "Visit {DATE}, next {DATE}.",
    "Reached at {PHONE} (home) and {PHONE} (work).",
    "Send the letter to {EMAIL}.",
    "Biopsy {DATE} showed no malignancy.",
    "{NAME} ({AGE}) admitted from {FACILITY}.",
)
_CARRIERS = (
    "Vitals stable overnight.", "Plan to continue current antibiotics.", "Exam unchanged from yesterday.",
    "No acute distress.", "Discussed risks and benefits.", "Labs notable for mild anemia.", "Will reassess in the morning.",
    "History of Parkinson disease and Graves disease.", "Wilson's, Addison's and Hodgkin's in family history.",
    "Foley in place; Glasgow 14.", "Positive Babinski on the left.", "Takes metformin and lisinopril.",
)
_SLOT = re.compile(r"\{([A-Z]+)\}")


def mimesis_notes(n: int, seed: int = 0) -> list[GoldNote]:
    """``n`` notes of 3-6 PHI sentences between plain clinical sentences, seeded."""
    rng = random.Random(seed)
    values = _Values(rng)
    notes = []
    for i in range(n):
        parts = []
        for _ in range(rng.randint(3, 6)):
            parts.append(rng.choice(_CARRIERS))
            parts.append(_SLOT.sub(lambda m: f"[[{_S[m.group(1)][1]}|{getattr(values, _S[m.group(1)][0])()}]]", rng.choice(MIMESIS_TEMPLATES)))
        notes.append(parse_marked(" ".join(parts) + "\n", f"mimesis note {i}"))
    return notes
