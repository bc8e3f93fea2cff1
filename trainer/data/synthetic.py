"""Seeded synthetic clinical notes with known ICD-10-CM codes and planted PHI (gold character spans).

Torch-free and fast. Notes have the usual sections (Chief complaint, HPI, PMH, Medications, Exam,
Assessment, Plan); codes come from ``synthetic_catalogue.CONDITIONS``, each written in one of several
phrasings. Patients have several notes over time with chronic conditions that recur (sometimes left out
of a note, so chronic-code imputation has work to do). PHI is planted in many formats and every PHI
stretch is recorded as a ``PhiSpan``; clinical eponyms (Parkinson disease, Babinski sign, ...) are not PHI.

Span conventions (what the de-identifier is measured against): titles ("Dr.", "Mrs.") and labels
("MRN:", "Phone:") are outside the span; "the 5th of June" is marked from "5th"; for ages over 89 only
the number is marked ("92" in "92-year-old"); street, city and ZIP code are three ADDRESS spans (the
state is not PHI under Safe Harbor).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from schemas.notes import NoteRecord
from schemas.phi import PhiCategory, PhiSpan
from trainer.data import synthetic_catalogue as cat

LONG_NOTE_CHARS = 5000  # ~1,000 word pieces: well past one 512-token segment
NO_CODE_FRACTION = 0.08
CHRONIC_KEEP_PROBABILITY = 0.8  # a patient's chronic condition is mentioned in this share of its notes


@dataclass(frozen=True)
class SyntheticNote:
    record: NoteRecord
    phi: tuple[PhiSpan, ...]


class _NoteBuilder:
    """Appends text and PHI pieces, keeping PHI character spans exact."""

    def __init__(self, style: int = 0) -> None:
        self.style = style  # which of the SECTION_HEADERS house styles
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[PhiSpan] = []

    def text(self, s: str) -> "_NoteBuilder":
        self.parts.append(s)
        self.length += len(s)
        return self

    def phi(self, s: str, category: PhiCategory) -> "_NoteBuilder":
        self.spans.append(PhiSpan(start=self.length, end=self.length + len(s), category=category))
        return self.text(s)

    def header(self, section: str) -> "_NoteBuilder":
        return self.text(cat.SECTION_HEADERS[section][self.style] + "\n")

    def result(self) -> str:
        return "".join(self.parts)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]  # str.capitalize() would turn "COPD" into "Copd"


def _ordinal(d: int) -> str:
    suffix = "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


def _add_date(b: _NoteBuilder, rng: random.Random, date: dt.date) -> None:
    """One date in one of several formats; "the 5th of June" keeps "the " outside the span."""
    month = cat.MONTHS[date.month - 1]
    style = rng.randrange(8)
    if style == 7:
        b.text("the ").phi(f"{_ordinal(date.day)} of {month}", PhiCategory.DATE)
        return
    formatted = (
        f"{date.month}/{date.day}/{date.year}",
        f"{date.month}/{date.day}",
        f"{month} {_ordinal(date.day)}",
        f"{date.day:02d}-{month[:3]}-{date.year}",
        date.isoformat(),
        f"{month} {date.day}, {date.year}",
        f"{date.month:02d}/{date.day:02d}/{date.year % 100:02d}",
    )[style]
    b.phi(formatted, PhiCategory.DATE)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _phone(rng: random.Random) -> str:
    area, line = f"{rng.randint(201, 989)}", f"01{_digits(rng, 2)}"  # 555-01xx: reserved fictional numbers
    return rng.choice(
        (f"({area}) 555-{line}", f"{area}-555-{line}", f"{area}.555.{line}", f"+1 {area} 555 {line}", f"{area}555{line}")
    )


@dataclass
class _Person:
    first: str
    last: str

    def name_forms(self, rng: random.Random) -> str:
        return rng.choice(
            (f"{self.first} {self.last}", f"{self.first[0]}. {self.last}", f"{self.last}, {self.first}", self.last)
        )


@dataclass
class _Patient:
    person: _Person
    female: bool
    birth: dt.date
    age: int
    chronic: list[cat.Condition]
    mrn: str
    address: tuple[str, str, str, str]  # street, city, state, zip
    phone: str
    email: str
    relative: _Person
    relation: str


def _person(rng: random.Random) -> _Person:
    return _Person(rng.choice(cat.FIRST_NAMES), rng.choice(cat.LAST_NAMES))


_CHRONIC = tuple(c for c in cat.CONDITIONS if c.chronic)
_ACUTE = tuple(c for c in cat.CONDITIONS if not c.chronic)


def _new_patient(rng: random.Random) -> _Patient:
    person = _person(rng)
    age = rng.choice((rng.randint(25, 89), rng.randint(60, 89), rng.randint(90, 104)))
    birth = dt.date(2025 - age, rng.randint(1, 12), rng.randint(1, 28))
    street = f"{rng.randint(10, 9899)} {rng.choice(cat.STREET_NAMES)} {rng.choice(cat.STREET_TYPES)}"
    domain = rng.choice(("example.com", "example.org", "mail.example.net"))
    return _Patient(
        person=person,
        female=rng.random() < 0.5,
        birth=birth,
        age=age,
        chronic=_one_per_category(rng.sample(_CHRONIC, rng.randint(0, 3))),
        mrn=_digits(rng, 8),
        address=(street, rng.choice(cat.CITIES), rng.choice(cat.STATES), _digits(rng, 5)),
        phone=_phone(rng),
        email=f"{person.first.lower()}.{person.last.lower().replace(chr(39), '')}{rng.randint(1, 99)}@{domain}",
        relative=_Person(rng.choice(cat.FIRST_NAMES), person.last if rng.random() < 0.6 else rng.choice(cat.LAST_NAMES)),
        relation=rng.choice(cat.RELATIONS),
    )


def _one_per_category(conditions: list[cat.Condition]) -> list[cat.Condition]:
    """Keep one code per 3-character category (never E11.9 with E11.65, or N18.30 with N18.9)."""
    seen: set[str] = set()
    kept = []
    for c in conditions:
        if c.code[:3] not in seen:
            seen.add(c.code[:3])
            kept.append(c)
    return kept


def _note_conditions(rng: random.Random, patient: _Patient) -> list[cat.Condition]:
    if rng.random() < NO_CODE_FRACTION:
        return []
    chosen = [c for c in patient.chronic if rng.random() < CHRONIC_KEEP_PROBABILITY]
    extra = rng.randint(0 if chosen else 1, 2)
    pool = [c for c in _ACUTE + _CHRONIC if c not in chosen]
    chosen += rng.sample(pool, extra)
    return _one_per_category(chosen)[:5]


def _header(b: _NoteBuilder, rng: random.Random, p: _Patient, date: dt.date, note_type: str, doctor: _Person) -> None:
    b.text(f"{note_type.upper()}\nPatient: ").phi(p.person.name_forms(rng) if rng.random() < 0.5 else f"{p.person.last}, {p.person.first}", PhiCategory.NAME)
    b.text("   DOB: ")
    _add_date(b, rng, p.birth)
    b.text("   MRN: " if rng.random() < 0.7 else "   Medical record #").phi(p.mrn, PhiCategory.ID)
    b.text("\nDate of service: ")
    _add_date(b, rng, date)
    b.text("\nAttending: Dr. ").phi(doctor.name_forms(rng), PhiCategory.NAME).text("\n\n")


def _hpi(b: _NoteBuilder, rng: random.Random, p: _Patient, conditions: list[cat.Condition], complaint: str, prior: dt.date) -> None:
    title = "Mrs." if p.female else "Mr."
    b.header("hpi").text(f"{title} ").phi(p.person.last, PhiCategory.NAME).text(" is a ")
    if p.age > 89:
        b.phi(str(p.age), PhiCategory.AGE)
    else:
        b.text(str(p.age))
    b.text(f"-year-old {'woman' if p.female else 'man'}")
    chronic = [c for c in conditions if c.chronic]
    if chronic:
        b.text(" with a history of " + ", ".join(rng.choice(c.phrasings) for c in chronic))
    b.text(f" who presents with {complaint}. She was last seen on " if p.female else f" who presents with {complaint}. He was last seen on ")
    _add_date(b, rng, prior)
    b.text(". ")
    codes = {c.code for c in conditions}
    negations = [s for s, deny in cat.NEGATIONS if not codes & set(deny)]
    b.text(" ".join(rng.sample(negations, min(2, len(negations)))))
    b.text(f" History obtained from the patient and {'her' if p.female else 'his'} {p.relation}, ")
    b.phi(p.relative.name_forms(rng), PhiCategory.NAME).text(".\n\n")


def _contact(b: _NoteBuilder, rng: random.Random, p: _Patient) -> None:
    """Social/contact lines: address, phones, e-mail, IDs, URL, IP (a random subset, several formats)."""
    street, city, state, zip_code = p.address
    b.header("social").text("Lives at ").phi(street, PhiCategory.ADDRESS).text(", ")
    b.phi(city, PhiCategory.ADDRESS).text(f", {state} ").phi(zip_code, PhiCategory.ADDRESS).text(".\n")
    lines = [
        lambda: b.text(rng.choice(("Phone: ", "Home phone ", "Cell: ", "Tel. "))).phi(p.phone, PhiCategory.PHONE),
        lambda: b.text(f"{p.relation.capitalize()} ").phi(p.relative.name_forms(rng), PhiCategory.NAME)
        .text(" can be reached at ").phi(_phone(rng), PhiCategory.PHONE),
        lambda: b.text("Email: ").phi(p.email, PhiCategory.EMAIL),
        lambda: b.text("SSN ").phi(f"{rng.randint(100, 665)}-{_digits(rng, 2)}-{_digits(rng, 4)}", PhiCategory.ID),
        lambda: b.text("Account #: ").phi(_digits(rng, 9), PhiCategory.ID),
        lambda: b.text("Health plan member ID: ").phi("".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(3)) + _digits(rng, 9), PhiCategory.ID),
        lambda: b.text("Driver's licence ").phi(rng.choice("ABCDEFGHSW") + _digits(rng, 7), PhiCategory.ID),
        lambda: b.text("Vehicle plate ").phi(f"{rng.randint(1, 9)}{rng.choice('ABCDEFGH')}{rng.choice('KLMNPR')}{rng.choice('STUVWX')}{_digits(rng, 3)}", PhiCategory.ID),
        lambda: b.text(rng.choice(("Pacemaker serial no. ", "Insulin pump device ID ", "CPAP device serial "))).phi(f"{rng.choice(('PM', 'SN', 'DV'))}-{_digits(rng, 4)}-{_digits(rng, 4)}", PhiCategory.ID),
        lambda: b.text("Portal: ").phi(f"https://portal.example-health.org/patients/{_digits(rng, 6)}", PhiCategory.URL),
        lambda: b.text("Home monitor uploads from IP ").phi(f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", PhiCategory.IP),
        lambda: b.text("Pharmacy fax ").phi(_phone(rng), PhiCategory.PHONE),
    ]
    for add in rng.sample(lines, rng.randint(2, 5)):
        add()
        b.text(".\n")
    b.text("\n")


def _exam(b: _NoteBuilder, rng: random.Random) -> None:
    b.header("exam")
    b.text(f"Vitals: BP {rng.randint(105, 165)}/{rng.randint(60, 95)}, HR {rng.randint(55, 110)}, "
           f"RR {rng.randint(12, 22)}, T {rng.choice(('36.6', '36.9', '37.2', '38.1'))} C, SpO2 {rng.randint(90, 100)}%.\n")
    b.text("\n".join(rng.sample(cat.EXAM_LINES, rng.randint(3, 5))))
    b.text("\n" + _cap(rng.choice(cat.EPONYM_FINDINGS)) + ".\n\n")


def _assessment_and_plan(b: _NoteBuilder, rng: random.Random, p: _Patient, conditions: list[cat.Condition], doctor: _Person, follow_up: dt.date) -> None:
    b.header("assessment")
    if not conditions:
        b.text("1. Routine visit; no acute issues identified.\n")
    for i, c in enumerate(conditions, 1):
        b.text(f"{i}. {_cap(rng.choice(c.phrasings))}.\n")
    b.text("\n").header("plan")
    for c in conditions:
        if c.medication:
            b.text(f"- {rng.choice(('Continue', 'Start', 'Refill'))} {c.medication}.\n")
    for line in rng.sample(cat.PLAN_LINES, rng.randint(1, 3)):
        b.text(f"- {line}\n")
    if rng.random() < 0.3:
        b.text(f"- Plan discussed with the patient's {p.relation} ").phi(p.relative.first, PhiCategory.NAME).text(" by phone.\n")
    if rng.random() < 0.5:  # names in running text, without a title
        nurse = _person(rng)
        b.text(rng.choice(("- Case reviewed with ", "- Care coordinated with "))).phi(f"{nurse.first} {nurse.last}", PhiCategory.NAME)
        b.text(rng.choice((", RN.\n", ", case manager.\n", ", PharmD.\n")))
    b.text("- Follow up with Dr. ").phi(doctor.last, PhiCategory.NAME).text(" on ")
    _add_date(b, rng, follow_up)
    b.text(".\n\n")


def _long_section(b: _NoteBuilder, rng: random.Random, p: _Patient, date: dt.date) -> None:
    """Interval history and review text that pushes a note past one 512-token segment."""
    b.header("interval")
    while b.length < LONG_NOTE_CHARS:
        b.text(rng.choice(cat.LONG_FILLER) + " ")
        if rng.random() < 0.4:
            b.text("Seen in the emergency department on ")
            _add_date(b, rng, date - dt.timedelta(days=rng.randint(20, 400)))
            b.text(" by Dr. ").phi(_person(rng).name_forms(rng), PhiCategory.NAME).text(". ")
    b.text("\n\n")


def _write_note(rng: random.Random, p: _Patient, date: dt.date, prior: dt.date, long: bool) -> tuple[str, list[PhiSpan], list[cat.Condition], str]:
    conditions = _note_conditions(rng, p)
    note_type = rng.choice(cat.NOTE_TYPES)
    doctor = _person(rng)
    b = _NoteBuilder(style=rng.randrange(3))
    _header(b, rng, p, date, note_type, doctor)
    b.header("cc").text(f"{_cap(rng.choice(cat.COMPLAINTS))}.\n\n")
    _hpi(b, rng, p, conditions, rng.choice(cat.COMPLAINTS), prior)
    pmh = [rng.choice(c.phrasings) for c in conditions if c.chronic]
    b.header("pmh").text(("\n".join(f"- {x}" for x in pmh) if pmh else "Noncontributory.") + "\n\n")
    meds = [c.medication for c in conditions if c.medication and c.chronic]
    b.header("meds").text(("\n".join(f"- {m}" for m in meds) if meds else "None.") + "\n\n")
    _contact(b, rng, p)
    _exam(b, rng)
    if long:
        _long_section(b, rng, p, date)
    _assessment_and_plan(b, rng, p, conditions, doctor, date + dt.timedelta(days=rng.randint(14, 120)))
    b.text("Electronically signed by ").phi(f"{doctor.first} {doctor.last}", PhiCategory.NAME).text(", MD on ")
    _add_date(b, rng, date)
    b.text(".\n")
    return b.result(), b.spans, conditions, note_type


def generate_notes(n: int, seed: int = 0, long_fraction: float = 0.1) -> list[SyntheticNote]:
    """``n`` notes from patients with 1-5 notes each, dated in order; identical for identical arguments."""
    if n < 0 or not 0 <= long_fraction <= 1:
        raise ValueError(f"need n >= 0 and 0 <= long_fraction <= 1 (got n={n}, long_fraction={long_fraction})")
    rng = random.Random(seed)
    notes: list[SyntheticNote] = []
    patient_index = 0
    while len(notes) < n:
        patient = _new_patient(rng)
        date = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randint(0, 6 * 365))
        for _ in range(min(rng.choice((1, 2, 2, 3, 4, 5)), n - len(notes))):
            prior = date - dt.timedelta(days=rng.randint(10, 200))
            text, spans, conditions, note_type = _write_note(rng, patient, date, prior, rng.random() < long_fraction)
            i = len(notes)
            record = NoteRecord(
                note_id=f"syn{seed}-n{i:06d}",
                patient_id=f"syn{seed}-p{patient_index:05d}",
                encounter_id=f"syn{seed}-e{i:06d}",
                date=date,
                note_type=note_type,
                text=text,
                codes=tuple(sorted({c.code for c in conditions})),
                source="synthetic",
            )
            notes.append(SyntheticNote(record=record, phi=tuple(spans)))
            date += dt.timedelta(days=rng.randint(7, 240))
        patient_index += 1
    return notes
