"""PHI values for the learned recogniser's training data, from ``faker`` in many locales and formats.

Every value is a fresh draw from a seeded generator: names of ~50 locales (ASCII-folded half of the time,
as many records store them), cities and streets of several countries, US rural routes, facilities and
employers, dates and phone numbers in many formats, and identifiers (MRN, Medicare MBI, plan, licence,
device serial numbers). The evaluation sets never use this module (see ``trainer.deid_model``).
"""

from __future__ import annotations

import datetime as dt
import random
import string
import unicodedata
from functools import cached_property

from faker import Faker

# Locales whose names are written in Latin script (faker's hi_IN, ja_JP... are not: clinical notes in
# English carry their romanised forms, which en_IN / en_PK / vi_VN... cover).
NAME_LOCALES = (
    "en_US en_GB en_IE en_AU en_CA en_IN en_NG en_PK en_KE es_ES es_MX es_CO es_AR es_CL pt_BR pt_PT fr_FR fr_CA "
    "de_DE de_AT de_CH it_IT nl_NL nl_BE pl_PL cs_CZ sk_SK hu_HU ro_RO hr_HR sl_SI tr_TR vi_VN id_ID yo_NG ig_NG "
    "ha_NG zu_ZA tw_GH fi_FI sv_SE no_NO da_DK et_EE lv_LV lt_LT ga_IE is_IS az_AZ uz_UZ en_TH"
).split()
PLACE_LOCALES = ("en_US en_US en_US en_US en_GB en_IE en_AU en_CA en_IN en_NZ es_MX es_ES pt_BR pt_PT de_DE de_AT de_CH fr_FR fr_CH "
                 "it_IT nl_NL nl_BE pl_PL cs_CZ sk_SK hu_HU ro_RO hr_HR sl_SI fi_FI sv_SE da_DK no_NO").split()
PHONE_LOCALES = ("en_US en_US en_GB en_AU en_CA en_IN en_NZ es_MX es_ES pt_BR pt_PT de_DE de_AT de_CH fr_FR it_IT nl_NL nl_BE pl_PL "
                 "tr_TR cs_CZ sk_SK hu_HU ro_RO hr_HR sl_SI fi_FI sv_SE da_DK no_NO").split()
# Given names and surnames that are also ordinary English words ("Will Young states ..."): the rules need
# context for these, the model has to learn it.
WORD_NAMES_FIRST = "Will Grace Hope Faith Joy Rose Bill Mark Guy Jack Amber Dawn Summer Rusty Sunny Buck Chase Hunter Wade Penny Ivy Iris Holly Pearl Art".split()
WORD_NAMES_LAST = "Young Long White Brown Green Black Strong King Bishop Cook Baker Fox Wolf Bird Hill Stone Wood Snow Rich Love Frost Moody Day Street Bush".split()
# Round 5: given names that are also ordinary words, for name positions ({WFIRST}): the first list above, the lexicon
# names that clinical text also writes in lower case (``engine/deid/data/ambiguous.txt``: data, not chosen by hand)
# and virtue and nature names, minus words that in notes are nearly always ordinary words ("son", "soon").
WORD_NAMES_EXTRA = ("Faith Mercy Charity Patience Prudence Constance Verity Liberty Glory Joy Destiny Serenity Unity Bliss Haven Honesty "
                    "Meadow Willow Aspen Autumn Rain Sky Skye Star Dove Robin Jay Birdie Fern Heather Hazel Poppy Daisy Lily "
                    "Jasmine Ruby Opal Jade Ember Sunny Rocky Buster Hunter Chase Cash King Prince Duke Baron Major "
                    "Sonny Angel Gem Lucky Happy Rusty Misty Brandy Ginger Pepper Honey Candy Sugar Cricket Bunny").split()
_NOT_NAMES = {"son", "soon", "numbers", "brain", "hung", "mi", "min", "al", "ed", "may", "van", "sun"}
FACILITY_KINDS = (
    "Memorial Hospital", "Medical Center", "Regional Medical Center", "General Hospital", "Community Hospital",
    "Health Center", "Family Practice", "Urgent Care", "Nursing Home", "Rehabilitation Center", "Skilled Nursing Facility",
    "Hospice", "Dialysis Center", "Surgery Center", "Children's Hospital", "Behavioral Health", "Clinic", "Care Center",
    "Assisted Living", "Cancer Institute", "Heart Institute", "Pediatrics", "Orthopedics", "Imaging",
)
# Round 5 (``Fakes(styled=True)``): small places and businesses as well
SMALL_PLACE_KINDS = ("Lodge", "Manor", "House", "Place", "Residence", "Retirement Village", "Pharmacy", "Drug", "Medical Group",
                     "Dental", "Surgery", "Health", "Wellness", "Office", "Senior Living", "Care Home", "Gardens")
RELATIVES = ("wife husband son daughter dtr mum mom dad mother father sister brother niece nephew aunt aunty uncle grandson "
             "granddaughter partner friend neighbor neighbour carer caregiver cousin stepdaughter").split()
STATES = "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
DATE_FORMATS = (
    "%m/%d/%Y", "{m}/{d}/%Y", "{m}/{d}/%y", "%m/%d/%y", "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M",
    "%d%b%Y", "%d%b%y", "%b-%d", "%b %d", "{m}/{d}", "%m/%d", "%B {d}, %Y", "%B {d}", "{d} %B %Y", "%d-%b-%Y", "%d-%b-%y",
    "%d.%m.%Y", "{d}/{m}/%Y", "%b. {d}, %Y", "%B {d}{sfx}", "{d}{sfx} of %B", "%B %Y", "%b %Y", "%m/%Y", "%m-%d-%Y",
    "%A, %B {d}", "%Y/%m/%d", "%m/%d/%Y %H:%M", "%b {d} %Y", "%d %b %Y", "%B the {d}{sfx}", "%Y%m%d", "%-H:%M on %m/%d",
    "%m%d%Y", "%d%m%Y", "{m}-{d}-%y", "{m}-{d}-%Y", "%b. {d}", "%d/%m/%y", "{d}.{m}.%Y", "%d %B", "%Y.%m.%d", "%b %d, %Y %H%M",
)
# Brand-like employer names with no company word ("Norvane", "Blue Heron", "Kessler's"): made from these parts,
# so the model learns employers from their context ("works for", "retired from") rather than from a suffix.
_BRAND_HEADS = "Nor Vel Tri Zen Alt Pro Quan Ver Lum Ex Om Cor Sym Dyn Nex Vor Kin Max Sol Ter Ar Bel Cal Dex Fal Gen Hal Jet".split()
_BRAND_TAILS = "vane ora ix tek ion ica ara on ent iva ux ium ex ova us ia tron lex gen ware net core point sys nova".split()
_BRAND_WORDS = ("Blue Red Golden Silver Green Northern Southern Eastern Western Pacific Atlantic Summit Pioneer Liberty Eagle "
                "Heron Falcon Oak Cedar Maple River Lake Harbor Prairie Mesa Canyon Granite Iron Copper Crystal Star Sun Moon "
                "Frontier Heritage Keystone Landmark Beacon Anchor Compass Horizon Evergreen Sterling Apex Vertex Orchard").split()
_TRADES = ("Trucking Logistics Foods Farms Dairy Bakery Roofing Plumbing Electric Motors Auto Body Freight Builders Construction "
           "Landscaping Printing Textiles Plastics Steel Lumber Mills Brewing Coffee Grocers Market Outfitters Hardware Pharmacy "
           "Software Systems Analytics Media Airlines Rail Energy Power Mining Shipping Staffing Realty Insurance Bank Credit Union").split()
_MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"  # the MBI alphabet: no S, L, O, I, B, Z


def fold(s: str) -> str:
    """ASCII-fold ("José Müller" -> "Jose Muller")."""
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).encode("ascii", "ignore").decode()


def _latin(s: str) -> bool:
    return all(c.isascii() or "LATIN" in unicodedata.name(c, "") for c in s if c.isalpha())


def _ordinal_suffix(d: int) -> str:
    return "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")


class Fakes:
    """Seeded PHI values. ``rng`` drives every choice; each faker instance is seeded from it."""

    def __init__(self, rng: random.Random, styled: bool = False) -> None:
        self.rng = rng
        self.facility_kinds = FACILITY_KINDS + (SMALL_PLACE_KINDS if styled else ())

    @cached_property
    def _fakers(self) -> dict[str, Faker]:
        out = {}
        for loc in sorted(set(NAME_LOCALES + PLACE_LOCALES + PHONE_LOCALES)):
            f = Faker(loc)
            f.seed_instance(self.rng.randrange(2**31))
            out[loc] = f
        return out

    def faker(self, locales) -> Faker:
        return self._fakers[self.rng.choice(locales)]

    def _digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def _case(self, s: str) -> str:
        r = self.rng.random()
        return s.upper() if r < 0.12 else s.lower() if r < 0.24 else s

    # -- names --------------------------------------------------------------------------------------
    def first(self) -> str:
        if self.rng.random() < 0.08:
            return self.rng.choice(WORD_NAMES_FIRST)
        return self._person_part("first_name")

    @cached_property
    def _word_first_names(self) -> list[str]:
        from engine.deid.lexicons import DATA_DIR

        def words(name: str) -> set[str]:
            return {w.strip().rstrip("~").lower() for w in (DATA_DIR / name).read_text(encoding="utf-8").splitlines() if w.strip()}

        data = (words("ambiguous.txt") & words("first_names.txt")) - _NOT_NAMES
        return sorted({w.lower() for w in WORD_NAMES_FIRST + WORD_NAMES_EXTRA} | data)

    def word_first(self) -> str:
        """A given name that is also an ordinary word, in the case notes write it in."""
        w = self.rng.choice(self._word_first_names)
        r = self.rng.random()
        return w if r < 0.35 else w.upper() if r < 0.45 else w.capitalize()

    def relative(self) -> str:
        return self.rng.choice(RELATIVES)

    def clock(self) -> str:
        return f"{self.rng.randint(0, 23):02d}{self.rng.choice(('00', '15', '30', '45'))}"

    def lower_city(self) -> str:
        return self.faker(PLACE_LOCALES).city().lower()

    def lower_place(self) -> str:
        """A business or facility as portal messages and quick notes write it: lower case, often without its
        company word ("walmart on 5th", "sunrise manor", "the red barn")."""
        r = self.rng
        kind = r.random()
        if kind < 0.35:
            v = self.employer()
        elif kind < 0.7:
            v = self.facility()
        elif kind < 0.85:
            v = f"{r.choice(_BRAND_WORDS)} {r.choice(('Lodge', 'Manor', 'House', 'Place', 'Gardens', 'Court', 'Villa', 'Office', 'Market'))}"
        else:
            v = r.choice(_BRAND_HEADS) + r.choice(_BRAND_TAILS)
        return v.lower() if r.random() < 0.8 else v

    def last(self) -> str:
        if self.rng.random() < 0.08:
            return self.rng.choice(WORD_NAMES_LAST)
        return self._person_part("last_name")

    def _person_part(self, what: str) -> str:
        for _ in range(10):
            v = getattr(self.faker(NAME_LOCALES), what)()
            if _latin(v) and v.strip():
                return fold(v) if self.rng.random() < 0.5 else v
        return getattr(self._fakers["en_US"], what)()

    def name(self) -> str:
        """A person's name in one of the forms notes use, sometimes upper or lower case."""
        first, last = self.first(), self.last()
        r = self.rng
        if r.random() < 0.1:  # "KOWALCZYK, EDYTA": record headers copied into the text
            return f"{last}, {first}".upper()
        form = r.choice((
            f"{first} {last}", f"{first} {last}", f"{first} {last}", f"{first} {r.choice(string.ascii_uppercase)}. {last}",
            f"{first} {self.first()} {last}", f"{first[0]}. {last}", f"{first[0]}.{r.choice(string.ascii_uppercase)}. {last}",
            f"{first} {r.choice(string.ascii_uppercase)} {last}", f"{first[0]} {last}", f"{last} {first}",
            last, first, f"{last}, {first}", f"{last}-{self.last()}", f"{first} {last}-{self.last()}",
        ))
        return self._case(form)

    def last_first(self) -> str:
        first, last = self.first(), self.last()
        s = f"{last}, {first}" + (f" {self.rng.choice(string.ascii_uppercase)}." if self.rng.random() < 0.3 else "")
        return s.upper() if self.rng.random() < 0.5 else s

    def initials(self) -> str:
        letters = [self.rng.choice(string.ascii_uppercase) for _ in range(self.rng.randint(2, 3))]
        return self.rng.choice(("".join(letters), ".".join(letters) + "."))

    # -- places -------------------------------------------------------------------------------------
    def town_zip(self) -> str:
        """"Twin Rivers 40213" / "Hallett, 74034": a town and a ZIP, no state."""
        return f"{self._fakers['en_US'].city()}{self.rng.choice((' ', ', '))}{self.zip()}"

    def city(self) -> str:
        f = self.faker(PLACE_LOCALES)
        return self._case(f.city()) if self.rng.random() < 0.3 else f.city()

    def state(self) -> str:
        return self.rng.choice(STATES)

    def zip(self) -> str:
        return self._digits(5) + (f"-{self._digits(4)}" if self.rng.random() < 0.2 else "")

    def street(self) -> str:
        r = self.rng
        kind = r.random()
        if kind < 0.12:
            return r.choice((f"RR {r.randint(1, 9)} Box {r.randint(1, 999)}", f"Rural Route {r.randint(1, 12)}",
                             f"HC {r.randint(1, 99)} Box {r.randint(1, 999)}", f"PO Box {r.randint(1, 9999)}"))
        if kind < 0.25:
            return f"{r.randint(1, 99)} {r.choice(('Elm', 'Ash', 'Quarry', 'Mill', 'Church', 'Station'))} {r.choice(('Close', 'Mews', 'Crescent', 'Gardens', 'Row', 'Green'))}, {r.choice(('Flat', 'Apt', 'Unit'))} {r.randint(1, 40)}"
        f = self.faker(PLACE_LOCALES)
        s = f.street_address()
        return self._case(s) if r.random() < 0.2 else s

    def foreign_address(self) -> str:
        """A full address abroad, on one line, in the orders notes copy them in (street, postcode, town)."""
        r = self.rng
        f = self.faker([loc for loc in PLACE_LOCALES if loc != "en_US"])
        if r.random() < 0.3:
            return ", ".join(part.strip() for part in f.address().splitlines())
        street, code, town = f.street_address().strip(), f.postcode().strip(), f.city().strip()
        return r.choice((f"{street}, {code} {town}", f"{street}, {town} {code}", f"{street} {code} {town}", f"{street}, {town}",
                         f"{code} {town}, {street}", f"{street}, {code} {town}, {f.current_country()}"))

    def facility(self) -> str:
        r = self.rng
        kind = r.choice(self.facility_kinds)
        base = r.choice((self.last(), self.city(), f"St. {self._fakers['en_US'].first_name()}'s", f"{self.last()} County",
                         f"Mount {self.last()}", f"{self.city()} Valley", f"{self.last()}-{self.last()}"))
        return f"{base} {kind}"

    def employer(self) -> str:
        r = self.rng
        kind = r.random()
        if kind < 0.4:
            f = self.faker(("en_US", "en_US", "en_GB", "en_CA", "en_AU", "de_DE", "de_CH", "es_MX", "es_ES", "fr_FR", "it_IT", "nl_NL", "sv_SE"))
            return f.company()
        if kind < 0.55:  # a coined brand, one word: no company word, no lexicon knows it
            return r.choice(_BRAND_HEADS) + r.choice(_BRAND_TAILS) + r.choice(("", "", "", " Inc.", " Corp", " Group"))
        if kind < 0.7:
            return f"{r.choice(_BRAND_WORDS)} {r.choice(_BRAND_WORDS + _TRADES)}"
        if kind < 0.8:
            name = self.last() + r.choice(("'s", "'s", "", " & Sons", " Brothers"))
            return name + (f" {r.choice(_TRADES)}" if r.random() < 0.5 else "")
        if kind < 0.9:
            return "".join(r.choice(string.ascii_uppercase) for _ in range(r.randint(2, 4))) + f" {r.choice(_TRADES)}"
        return f"The {r.choice(_BRAND_WORDS)} {r.choice(('Group', 'Company', 'Store', 'Shop', 'Works', 'Tavern', 'Inn', 'Diner', 'Kitchen'))}"

    # -- dates, phones, identifiers -----------------------------------------------------------------
    def date(self) -> str:
        r = self.rng
        d = dt.datetime(1930, 1, 1) + dt.timedelta(days=r.randint(0, 35000), minutes=r.randint(0, 1439))
        fmt = r.choice(DATE_FORMATS).replace("{m}", str(d.month)).replace("{d}", str(d.day)).replace("{sfx}", _ordinal_suffix(d.day))
        out = d.strftime(fmt.replace("%-H", str(d.hour)))
        return out.upper() if r.random() < 0.1 else out

    def phone(self) -> str:
        r = self.rng
        a, b, c = r.randint(201, 989), r.randint(200, 999), self._digits(4)
        kind = r.random()
        if kind < 0.35:
            return self.faker(PHONE_LOCALES).phone_number()
        return r.choice((
            f"{b}-{c}", f"{b}.{c}", f"({a}) {b}-{c}", f"{a}/{b}-{c}", f"{a}-{b}-{c} ext. {r.randint(1, 9999)}",
            f"{a}.{b}.{c} x{r.randint(1, 999)}", f"+1 {a} {b} {c}", f"+1-{a}-{b}-{c}", f"1 ({a}) {b}-{c}", f"{a} {b} {c}",
            f"+44 {r.randint(20, 79)} {self._digits(4)} {self._digits(4)}", f"+{r.randint(2, 98)} {self._digits(3)} {self._digits(3)} {self._digits(3)}",
            f"{a}{b}{c}", f"({a}){b}-{c}",
        ))

    def mbi(self) -> str:
        r = self.rng
        p = [str(r.randint(1, 9)), r.choice(_MBI_LETTERS), r.choice(_MBI_LETTERS + string.digits), str(r.randint(0, 9)),
             r.choice(_MBI_LETTERS), r.choice(_MBI_LETTERS + string.digits), str(r.randint(0, 9)), r.choice(_MBI_LETTERS),
             r.choice(_MBI_LETTERS), str(r.randint(0, 9)), str(r.randint(0, 9))]
        s = "".join(p)
        return f"{s[:4]}-{s[4:7]}-{s[7:]}" if r.random() < 0.5 else s

    def identifier(self) -> str:
        """MRN, account, plan, licence, device serial, passport...: many shapes."""
        r = self.rng
        up = string.ascii_uppercase
        return r.choice((
            self._digits(r.randint(5, 10)), f"{r.choice(up)}{r.choice(up)}{self._digits(r.randint(5, 9))}", self.mbi(),
            f"{self._digits(3)}-{self._digits(2)}-{self._digits(4)}", f"{r.choice(up)}{self._digits(3)}-{self._digits(3)}-{self._digits(3)}",
            f"{''.join(r.choice(up) for _ in range(3))}-{self._digits(r.randint(4, 8))}", f"{self._digits(2)}-{self._digits(7)}",
            f"SN{self._digits(r.randint(6, 10))}", f"{r.choice(up)}{self._digits(2)}{r.choice(up)}{self._digits(4)}{r.choice(up)}",
            f"{self._digits(4)}-{''.join(r.choice(up + string.digits) for _ in range(5))}", self._fakers["en_US"].ssn(),
            f"{''.join(r.choice(up + string.digits) for _ in range(r.randint(8, 12)))}", f"#{self._digits(r.randint(5, 8))}",
        ))
