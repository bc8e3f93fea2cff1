"""Person names (patients, relatives, clinicians): titles, context words, credentials, a name lexicon and
"Last, First"; then every other capitalised occurrence of a found name word in the same note.

Clinical words are protected: eponyms and device/drug names from ``clinical_allowlist.txt`` and words of
ICD-10-CM descriptions are never names unless a title stands right before them ("Dr. Foley")."""

from __future__ import annotations

import bisect
import re
from typing import Literal

from engine.deid._presidio import EntityRecognizer, RecognizerResult
from engine.deid.lexicons import EPONYM_HEADS, Lexicons, key, load_lexicons
from schemas.phi import PhiCategory

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+|-[^\W\d_]+)*")
TITLES = frozenset("dr doctor mr mrs ms miss mister mx prof professor sr sra srta".split())
# Words after which a capitalised word is a name: relatives and roles (need a lexicon hit or a second word).
RELATIONS = frozenset(
    """son daughter wife husband mother father brother sister spouse partner niece nephew caregiver friend
    guardian grandson granddaughter grandmother grandfather aunt uncle cousin fiance fiancee girlfriend
    boyfriend neighbor neighbour roommate sibling stepson stepdaughter stepmother stepfather
    dtr dau sis bro hubby mum mom dad nan nana grandma grandpa gran granny aunty auntie stepdad stepmum stepmom""".split()
)
# Words after which the next capitalised words are a name even if no lexicon knows them.
STRONG = frozenset("patient pt name attending physician surgeon pcp provider resident intern nurse rn np cc contact nok poa member mbr".split())
# "... by Susan Smith": only after these verbs.
BY_VERBS = frozenset(
    """seen referred dictated signed transcribed evaluated examined accompanied performed reviewed approved
    authored written attested cosigned co-signed countersigned consulted discussed interpreted read
    called covered followed forwarded sent relayed reported brought given provided obtained ordered entered
    documented completed witnessed translated accompanied driven raised""".split()
)
# "... with Ekin Erkekli", "... from Dawid Visser": the next capitalised words are a name after these prepositions
# only right after one of these words (the name must not be an ordinary word: "performed with Versed" stays).
WITH_FROM_VERBS = {"with": frozenset("seen spoke spoken talked discussed met consulted jointly".split()),
                   "from": frozenset("obtained collateral received message call".split())}
# Lower-case particles inside names ("van der Berg", "de la Cruz") when a capitalised word follows.
PARTICLES = frozenset("van von der den de del della la le du da di dos das bin ibn al el ter ten".split())
CREDENTIALS = frozenset("md m.d do d.o rn np pa pa-c phd dds dmd facp facs crna lpn cnm dpm od pharmd msw lcsw".split())
# Capitalised words that start sentences and headings: never part of a name.
STOP = frozenset(
    """the a an and or but of in on at to for with without from by as is was are were be has had have he she
    they his her their him them it its this that these those there here who which what when where why how
    patient pt history physical exam examination assessment plan diagnosis diagnoses impression hospital
    clinic medical center centre department service unit emergency internal medicine surgery surgical family
    social past present chief complaint date time name report note summary discharge admission admitted
    follow up review systems general vital signs lab labs laboratory results procedure procedures operation
    operative postoperative preoperative findings indications indication description allergies medications
    meds no yes not none negative positive normal left right bilateral alive deceased living healthy well
    unknown noncontributory denies reports states mother father sister brother son daughter wife husband
    dear sincerely thank thanks regards cc signed electronically dictated transcribed attending physician
    nurse doctor dr mr mrs ms miss md do rn np pa phd mg ml kg cm mm am pm status post continue start stop
    refill return call contact phone email fax address lives home street city state zip county mrn dob ssn
    age sex male female man woman boy girl infant baby child old year years st nd rd th monday tuesday
    wednesday thursday friday saturday sunday today tomorrow yesterday morning evening night also then
    please see seen per via vs versus approximately about after before during since until while because
    if so all any some each every other another new old first second third last next education information
    instructions instruction consent care counseling identification number id profile label labels data
    record records chart file visit encounter room bed floor ward services french fr images naming sample""".split()
)


_CREDENTIAL = re.compile(
    r"(?<=[\w.])(?:,\s*|\s+)(?:M\.D\.|D\.O\.|MD|DO|RN|NP|PA-C|PhD|DDS|DMD|FACP|FACS|CRNA|LPN|PharmD|APRN|CNP)(?![\w-])"
)


_LOWER_AFTER_TITLE = re.compile(r"(?<![\w.])(?:dr|mr|mrs|ms|miss|mister|doctor)\.?\s+(?P<n>[a-z][a-z'’-]{1,30})(?![\w-])")
_LOWER_AFTER_CUE = re.compile(
    r"(?<![\w.])(?:wife|husband|daughter|son|mother|father|sister|brother|spouse|partner|friend|niece|nephew|pt|patient|"
    r"grandson|granddaughter|caregiver|guardian|neighbor|neighbour|aunt|uncle|cousin|dtr|sis|bro|hubby|mum|mom|dad|nan|nana|"
    r"grandma|grandpa|gran|granny|aunty|auntie|stepdad|stepmum|stepmom|boyfriend|girlfriend|fiance|fiancee|roommate|nurse|"
    r"name\s+is|named|first\s+name|last\s+name|surname)\s*,?\s+(?P<n>[a-z][a-z'’-]{1,30})(?![\w-])"
)
# A given name introduced by the writer of a message ("hi dr x its marjorie again", "this is temperance"): lexicon
# first names only, the cue words being so common
_LOWER_SELF_INTRO = re.compile(r"(?<![\w.])(?:it'?s|it’s|this\s+is|i\s+am|im|i'm)\s+(?P<n>[a-z][a-z'’-]{1,30})(?![\w-])")
_LOWER_NEXT = re.compile(r" (?P<n>[a-z][a-z'’-]{1,30})(?![\w-])")
_LOWER_PARTICLES = frozenset("van von der den de del della la le du da di dos das ter ten".split())
_UPPER_LAST_FIRST = re.compile(r"(?<![\w'’-])[A-Z][A-Z'’-]+,\s?[A-Z][A-Z'’-]+(?:\s[A-Z][A-Z'’-]+){0,4}(?![\w'’-])")
_NICKNAME = re.compile(
    r"(?i:\b(?:prefers\s+to\s+be\s+called|goes\s+by|nicknamed|also\s+known\s+as|a\.k\.a\.?|aka|named))\s+[\"'“]?"
    r"(?P<n>[A-Z][\w'’-]+(?:\s[A-Z][\w'’-]+)?)"
)
_ROLES = (r"tech|technician|aide|interpreter|translator|chaplain|therapist|pharmacist|sitter|caseworker|case\s+manager|"
          r"social\s+worker|counsel+or|midwife|doula|scribe|student|resident|nurse|rn|lpn|cna|np|pa|md|attending|"
          "caregiver|poa|nok|hcp|proxy|guardian|" + "|".join(sorted(RELATIONS)))
_BEFORE_ROLE = re.compile(rf"(?<![\w'’-])(?P<n>[A-Z][\w'’-]+(?:\s[A-Z][\w'’-]+){{0,2}})\s*\((?i:{_ROLES})\)")
# not after an article: "a Codman Hakim valve" is a device
_CAP_PAIR = re.compile(r"(?<![\w'’-])(?<!\b[Aa] )(?<!\b[Aa]n )(?<!\b[Tt]he )(?=(?P<a>[A-Z][a-z'’]{2,}) {1,3}(?P<b>[A-Z][a-z'’]{2,})(?![\w'’-]))")
_PROCEDURE_SUFFIXES = ("ectomy", "plasty", "otomy", "ostomy", "pexy", "rrhaphy", "scopy", "graphy", "itis", "osis", "oma")
_KEEP_LOWER = (PARTICLES | TITLES | RELATIONS | STRONG | BY_VERBS | CREDENTIALS | EPONYM_HEADS | {"by", "is", "named"}
               | set(WITH_FROM_VERBS) | set().union(*WITH_FROM_VERBS.values()))


class _Tok:
    """One word of the note (a plain slotted class: notes have thousands of words)."""

    __slots__ = ("start", "end", "word", "key", "dot")

    def __init__(self, start: int, end: int, word: str, key: str, dot: bool) -> None:
        self.start, self.end, self.word, self.key = start, end, word, key
        self.dot = dot  # a period follows ("J.")


def _is_cap(w: str) -> bool:
    return w[:1].isupper() and (len(w) == 1 or not w.isupper())


def _possessive(w: str) -> bool:
    return w.endswith(("'s", "’s", "'S"))


def _is_upper_word(w: str) -> bool:
    return len(w) > 1 and w.isupper()


class NameRecognizer(EntityRecognizer):
    """Token rules over the note; stateless between calls."""

    MAX_NAME_TOKENS = 4

    def __init__(self, lexicons: Lexicons | None = None) -> None:
        self.lex = lexicons or load_lexicons()
        super().__init__(supported_entities=[PhiCategory.NAME.value], name="DeidNameRecognizer")

    def load(self) -> None:
        pass

    # -- token classes -------------------------------------------------------------------------------
    def _clinical(self, toks: list[_Tok], i: int) -> bool:
        """A protected clinical word here (eponym, drug, device, ICD-10-CM word)."""
        lex, t = self.lex, toks[i]
        parts = t.key.replace("’", "'").split("-")
        if any(p in lex.clinical or p.removesuffix("'s") in lex.clinical for p in parts):
            return True
        if t.key in lex.clinical_words and t.key not in lex.first_names and t.key not in lex.last_names:
            return True
        if any(p.removesuffix("'s") in lex.clinical_if_head for p in parts):
            nxt = toks[i + 1].key if i + 1 < len(toks) else ""
            gap_ok = i + 1 < len(toks) and toks[i + 1].start - t.end <= 3
            return gap_ok and (nxt in EPONYM_HEADS or nxt.rstrip("s") in EPONYM_HEADS or nxt.endswith(_PROCEDURE_SUFFIXES))
        return False

    def _nameish(self, toks: list[_Tok], i: int, upper_ok: bool) -> bool:
        """Could be part of a name given supporting context."""
        w = toks[i].word
        if w in PARTICLES:  # a name only if at most three particles lead to a capitalised word ("van der Berg"): a
            j = i           # bounded loop, so "de de de ..." 70,000 times costs neither the stack nor quadratic time
            while toks[j].word in PARTICLES and j - i < 3:
                if j + 1 >= len(toks) or toks[j + 1].start - toks[j].end != 1:
                    return False
                j += 1
                if _is_cap(toks[j].word):
                    return True
            return False
        if len(w) == 1:
            return w.isupper() and (w != "I" or toks[i].dot)
        if toks[i].key in STOP or self._clinical(toks, i):
            return False
        return _is_cap(w) or (upper_ok and _is_upper_word(w))

    def _known(self, t: _Tok) -> bool:
        """A lexicon name that clinical text does not also use as an ordinary word."""
        k = t.key.removesuffix("'s")
        return (k in self.lex.first_names or k in self.lex.last_names) and k not in self.lex.ambiguous

    @staticmethod
    def _cap_follows(text: str, toks: list[_Tok], j: int) -> bool:
        """Token j is followed by another capitalised word in the same phrase ("Internal Medicine")."""
        return j + 1 < len(toks) and text[toks[j].end : toks[j + 1].start] == " " and toks[j + 1].word[:1].isupper()

    def _ordinary(self, t: _Tok) -> bool:
        """An ordinary English or clinical word that no name list holds ("Versed", "Lidocaine")."""
        k = t.key.removesuffix("'s")
        return k in self.lex.common_words and k not in self.lex.first_names and k not in self.lex.last_names

    def _in_lexicon(self, t: _Tok) -> bool:
        """In a name list, even if also an ordinary word ("Brown"): enough after "her daughter,"."""
        k = t.key.removesuffix("'s")
        return k in self.lex.first_names or k in self.lex.last_names

    # -- sequence helpers ----------------------------------------------------------------------------
    def _run(self, text: str, toks: list[_Tok], i: int, upper_ok: bool, comma_ok: Literal["known", "any"]) -> int:
        """End index (exclusive) of a name starting at token i: capitalised words or initials joined by a
        space or an initial's period; then "Last, First" when the word after the comma is a known first
        name or an initial ("known"), or any name-like word that ends the phrase ("any", after context)."""
        j = i
        while j < len(toks) and j - i < self.MAX_NAME_TOKENS and self._nameish(toks, j, upper_ok):
            j += 1
            if j < len(toks):
                gap = text[toks[j - 1].end : toks[j].start]
                if gap in (" ", ". ", ".", "  ", "   "):  # forms pad names with spaces ("Gurpreet   Sandhu")
                    if gap.startswith(".") and len(toks[j - 1].word) > 1:
                        break  # "Smith. Then" ends a sentence; only "J. Smith" joins over a period
                    continue
                # "Last, First" never joins a possessive: "PMH: Wilson's, Addison's" is a list of eponyms
                if gap == ", " and j - i == 1 and self._nameish(toks, j, upper_ok) and not _possessive(toks[j - 1].word) and not _possessive(toks[j].word):
                    nxt = toks[j]
                    loose = comma_ok == "any" and not self._cap_follows(text, toks, j)
                    if nxt.key not in CREDENTIALS and (self._known(nxt) or nxt.key in self.lex.first_names or len(nxt.word) == 1 or loose):
                        continue
                break
        return j

    def analyze(self, text: str, entities=None, nlp_artifacts=None) -> list[RecognizerResult]:
        # Only capitalised words and the lower-case words the rules look at become tokens; a dropped word
        # between two tokens shows up in the gap text, which then joins nothing.
        toks = [
            _Tok(m.start(), m.end(), w, key(w), text.startswith(".", m.end()))
            for m in _WORD.finditer(text)
            if (w := m.group())[0].isupper() or w in _KEEP_LOWER or w.lower() in _KEEP_LOWER or w.endswith(_PROCEDURE_SUFFIXES)
        ]
        spans: list[tuple[int, int]] = []
        n = len(toks)
        i = 0
        while i < n:
            t = toks[i]
            k = t.key
            nxt_gap = text[t.end : toks[i + 1].start] if i + 1 < n else ""
            end = i + 1
            if k in TITLES and i + 1 < n and nxt_gap.strip() in ("", ".") and "\n" not in nxt_gap:
                # Dr. Foley: right after a title even clinical words are names
                j = i + 1
                while j < n and j - i <= self.MAX_NAME_TOKENS and (
                    (_is_cap(toks[j].word) or _is_upper_word(toks[j].word)) and (toks[j].key not in STOP or len(toks[j].word) == 1)
                    or toks[j].word in PARTICLES and self._nameish(toks, j, False)
                ):
                    j += 1
                    gap = text[toks[j - 1].end : toks[j].start] if j < n else ""
                    if gap not in (" ", ". ", ", ") or gap == ". " and len(toks[j - 1].word) > 1:
                        break
                    if gap == ", " and (j - i > 2 or toks[j].key in CREDENTIALS or not self._nameish(toks, j, True) or self._cap_follows(text, toks, j)):
                        break
                if j > i + 1:
                    spans.append((toks[i + 1].start, toks[j - 1].end))
                    end = j
            elif (k in WITH_FROM_VERBS and i > 0 and toks[i - 1].key in WITH_FROM_VERBS[k] and i + 1 < n
                  and nxt_gap == " " and not self._ordinary(toks[i + 1])):
                j = self._run(text, toks, i + 1, False, "known")
                if j > i + 1:
                    spans.append((toks[i + 1].start, toks[j - 1].end))
                    end = j
            elif k in STRONG or k in RELATIONS or (k == "by" and i > 0 and toks[i - 1].key in BY_VERBS):
                sep = nxt_gap.strip()
                if "\n" not in nxt_gap and sep in ("", ":", ",", "-", "#"):
                    strong = k in STRONG or k == "by"
                    caps_note = _is_upper_word(t.word)  # "DAUGHTER CHERYL AWARE": the whole note is in capitals
                    upper_ok = k in ("name", "patient", "pt") and sep == ":" or caps_note
                    start = i + 1
                    if start < n and toks[start].key in ("is", "named") and strong is False:
                        start += 1
                        if start < n and text[toks[start - 1].end : toks[start].start] != " ":
                            start = n  # "Mom is more confused. Vitals ...": the name must follow "is" directly
                    j = self._run(text, toks, start, upper_ok, "any") if start < n else start
                    while caps_note and j > start and _is_upper_word(toks[j - 1].word) and (
                            self._ordinary(toks[j - 1]) or len(toks[j - 1].word) <= 4 and not self._in_lexicon(toks[j - 1])):
                        j -= 1  # a name, then ordinary words or acronyms of the capitalised sentence ("PT EVAL")
                    # a relative or role word and a capitalised word that is no clinical or stop word: a name
                    # ("her grandson Tyrell", "husband Nigel") even when no lexicon knows it
                    if j == start + 1 and len(toks[start].word) == 1 and text[toks[start].end : toks[start].end + 1] in ("&", "/", "+"):
                        j = start  # "pt A&Ox3": a letter glued to a symbol is no initial
                    if j > start:
                        spans.append((toks[start].start, toks[j - 1].end))
                        end = j
            elif self._nameish(toks, i, False) and (
                self._known(t) or len(t.word) == 1 or i + 1 < n and nxt_gap == " " and self._known(toks[i + 1])
            ):
                j = self._run(text, toks, i, False, "known")
                run = toks[i:j]
                if j - i >= 2 and any(self._known(x) for x in run) and not all(len(x.word) == 1 for x in run):
                    spans.append((t.start, toks[j - 1].end))
                    end = j
            i = max(end, i + 1)
        spans += self._before_credentials(text, toks)
        spans += self._cased_forms(text)
        return [RecognizerResult(PhiCategory.NAME.value, s, e, 0.8) for s, e in spans] + self._propagate(text, toks, spans)

    def _plain_name_word(self, w: str, first: bool = False) -> bool:
        k = key(w).removesuffix("'s")
        lex = self.lex
        if k in STOP or k in lex.clinical or k in lex.clinical_if_head or k in lex.ambiguous or len(k) < 2:
            return False
        if k in lex.clinical_words and k not in lex.first_names and k not in lex.last_names:
            return False
        return k in lex.first_names if first else True

    def _lower_pairs(self, text: str) -> list[tuple[int, int]]:
        """Lower-case words one space apart, up to two particles between them ("bill de marco"), letters of any
        script ("rubin török"); a walk over the words costs less than an overlapping pattern tried everywhere."""
        words = [m for m in _WORD.finditer(text) if m.group().islower()]
        out = []
        for i, a in enumerate(words[:-1]):
            if not a.group().isalpha() or (a.start() and text[a.start() - 1] in "'’-"):
                continue
            j, prev = i + 1, a
            while j < len(words) and text[prev.end() : words[j].start()] == " " and j - i <= 3 and words[j].group() in _LOWER_PARTICLES:
                prev, j = words[j], j + 1
            if j >= len(words) or j - i > 3 or text[prev.end() : words[j].start()] != " ":
                continue
            b = words[j]
            if b.end() < len(text) and text[b.end()].isalnum():
                continue
            if self._lower_name_pair(key(a.group()), key(b.group()), j > i + 1):
                out.append((a.start(), b.end()))
        return out

    def _unknown(self, k: str) -> bool:
        """No word of English or clinical English ("francischetto", "erkekli"): in a pair, most likely a name."""
        return len(k) >= 3 and k not in self.lex.common_words

    def _lower_name_pair(self, ka: str, kb: str, linked: bool = False) -> bool:
        """Two lower-case words that read as a given name and a surname ("pt john smith", "gary francischetto",
        "ekin erkekli", "trasila bell", "bill de marco"): each is a lexicon name or an unknown word, and the pair
        is a plain first + last name of the lexicons, holds an unknown word, or has a particle between a given
        name and a name. Ordinary and clinical words never ("bell palsy": "palsy" is clinical)."""
        lex = self.lex
        if ka not in lex.first_names and not self._unknown(ka):
            return False  # the common case, first: an ordinary word
        for k in (ka, kb):
            if k in STOP or k in lex.clinical or k in _KEEP_LOWER:
                return False
            if k in lex.clinical_words and k not in lex.first_names and k not in lex.last_names:
                return False
        a_ok = ka in lex.first_names or self._unknown(ka)
        b_ok = kb in lex.last_names or kb in lex.first_names or self._unknown(kb)
        lexicon_pair = ka in lex.first_names and ka not in lex.ambiguous and kb in lex.last_names
        return a_ok and b_ok and (lexicon_pair or self._unknown(ka) or self._unknown(kb) or linked and ka in lex.first_names)

    def _cased_forms(self, text: str) -> list[tuple[int, int]]:
        """Names the capitalised-token pass cannot see: lower case ("dr okonkwo", "pt john smith", "wife
        maria"), "LAST, FIRST" in capitals ("SANTOS, MARIA DE LOURDES"), and nicknames ("goes by Bobby")."""
        lex = self.lex
        out = []
        for m in _LOWER_AFTER_TITLE.finditer(text):
            if self._plain_name_word(m.group("n")):
                out.append(m.span("n"))
        for m in _LOWER_AFTER_CUE.finditer(text):
            if self._lower_cued_name(text, m.group("n"), m.end("n")):
                out.append((m.start("n"), self._lower_surname_end(text, m.end("n"))))
        for m in _LOWER_SELF_INTRO.finditer(text):
            k = key(m.group("n"))
            if k in lex.first_names and self._plain_name_word(m.group("n"), first=True) and k not in _KEEP_LOWER:
                out.append((m.start("n"), self._lower_surname_end(text, m.end("n"))))
        for m in _CAP_PAIR.finditer(text):  # "Rajesh Venkataraman", "Abdirahman  Warsame": no vocabulary knows either word
            ka, kb = key(m.group("a")), key(m.group("b"))
            if self._unknown_name_word(ka) and self._unknown_name_word(kb):
                out.append((m.start("a"), m.end("b")))
        for m in _BEFORE_ROLE.finditer(text):
            words = m.group("n").split()
            while words and (key(words[0]) in STOP or key(words[0]) in lex.clinical):
                words = words[1:]
            if words and not all(self._ordinary_key(key(w)) for w in words):
                out.append((m.end("n") - len(" ".join(words)), m.end("n")))
        out += self._lower_pairs(text)
        for m in _UPPER_LAST_FIRST.finditer(text):
            words = re.findall(r"[A-Z][A-Z'’-]+", m.group())
            keys = [key(w) for w in words]
            cut = next((i for i, k in enumerate(keys) if k in STOP or k in lex.clinical or k in CREDENTIALS), len(keys))
            if cut < 2 or not (keys[0] in lex.last_names or keys[1] in lex.first_names) or keys[1] in lex.clinical_words and self._ordinary_key(keys[1]):
                continue
            end = m.start() + m.group().find(words[cut - 1], len(words[0])) + len(words[cut - 1])
            out.append((m.start(), end))
        for m in _NICKNAME.finditer(text):
            out.append(m.span("n"))
        return out

    def _unknown_name_word(self, k: str) -> bool:
        lex = self.lex
        return self._unknown(k) and k not in STOP and k not in lex.clinical and k not in lex.clinical_if_head and k not in lex.clinical_words

    def _ordinary_key(self, k: str) -> bool:
        return k in self.lex.common_words and k not in self.lex.first_names and k not in self.lex.last_names

    def _lower_cued_name(self, text: str, word: str, end: int) -> bool:
        """A lower-case word after a relative, role or "name is": a given name of the lexicon, a word no vocabulary
        holds ("wife shirin"), or a lexicon name that is also an ordinary word when punctuation ends it ("nurse
        holly,"; "son will come" stays)."""
        k = key(word)
        lex = self.lex
        if k in STOP or k in lex.clinical or k in _KEEP_LOWER or len(k) < 2:
            return False
        if k in lex.clinical_words and k not in lex.first_names and k not in lex.last_names:
            return False
        if self._plain_name_word(word, first=True) or self._unknown(k):
            return True
        if (k in lex.first_names or k in lex.last_names) and k not in lex.ambiguous and self._lower_surname_end(text, end) > end:
            return True  # "named bartholomew oyelaran": a lexicon name with a surname after it
        return k in lex.first_names and (end >= len(text) or text[end] in ",.;:!?)\n")

    def _lower_surname_end(self, text: str, end: int) -> int:
        """Extend a lower-case given name over up to two following name words ("ruth ann pickering")."""
        for _ in range(2):
            m = _LOWER_NEXT.match(text, end)
            if not m:
                break
            k = key(m.group("n"))
            if k in STOP or k in _KEEP_LOWER or k in self.lex.clinical or not (
                    k in self.lex.last_names and k not in self.lex.ambiguous or k in self.lex.first_names and k not in self.lex.ambiguous
                    and not self._ordinary_key(k) or self._unknown(k)):
                break
            end = m.end("n")
        return end

    def _before_credentials(self, text: str, toks: list[_Tok]) -> list[tuple[int, int]]:
        """"Susan Okafor, MD", "J. Chen RN": up to three name-like words before a credential."""
        out = []
        ends = [t.end for t in toks]
        for m in _CREDENTIAL.finditer(text):
            j = bisect.bisect_right(ends, m.start()) - 1  # last token before the credential
            if j < 0 or toks[j].end < m.start() - 1:
                continue  # a lower-case word (not a token) stands right before the credential
            i = j
            while i >= 0 and j - i < 3 and self._nameish(toks, i, True):
                gap = text[toks[i].end : toks[i + 1].start] if i < j else ""
                if i < j and gap not in (" ", ". "):
                    break
                i -= 1
            if i < j:
                out.append((toks[i + 1].start, toks[j].end))
        return out

    def _propagate(self, text: str, toks: list[_Tok], spans: list[tuple[int, int]]) -> list[RecognizerResult]:
        """Other capitalised occurrences of words already found as names ("Mr. Okafor" ... "Okafor says")."""
        if not spans:
            return []
        found: set[str] = set()
        covered = set()
        si = 0
        spans_sorted = sorted(spans)
        for idx, t in enumerate(toks):
            while si < len(spans_sorted) and spans_sorted[si][1] <= t.start:
                si += 1
            if si < len(spans_sorted) and spans_sorted[si][0] <= t.start and t.end <= spans_sorted[si][1]:
                covered.add(idx)
                if len(t.word) > 1 and t.key not in STOP and t.key not in self.lex.clinical:
                    found.add(t.key.removesuffix("'s"))
        out = []
        for idx, t in enumerate(toks):
            if idx in covered or not (_is_cap(t.word) or _is_upper_word(t.word)):
                continue
            if t.key.removesuffix("'s") in found and not self._clinical(toks, idx):
                out.append(RecognizerResult(PhiCategory.NAME.value, t.start, t.end, 0.6))
        return out
