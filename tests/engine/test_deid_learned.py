"""engine.deid's learned recogniser and the Safe Harbor formats of issue 14: the NER pipeline shipped as
package data, the rules/rules+ner setting, clinical words protected from the model, and the formats the rules
must catch whatever the model does (ages in words, ISO datetimes, 7-digit and international phones, MBI...)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.deid import DeidConfig, Deidentifier
from engine.deid.recognizers.learned import MODEL_DIR, NerRecognizer, trim, whole_words
from engine.pipeline.deidentify import make_deidentifier
from schemas.phi import PhiCategory
from schemas.settings import EngineSettings


@pytest.fixture(scope="module")
def rules() -> Deidentifier:
    return Deidentifier(DeidConfig(model="rules"))


@pytest.fixture(scope="module")
def both() -> Deidentifier:
    return Deidentifier(DeidConfig())


@pytest.mark.parametrize(
    "text, phi, kept",
    [
        ("Arrived 2019-03-04T10:22Z; anesthesia 2023-08-08T07:05:00-05:00.", ["2019-03-04", "10:22Z", "2023-08-08"], ["Arrived"]),
        ("DOB 04Mar1931, adm Mar-04, seen 04MAR19; transferred 3/11 with NSTEMI; Aug '19.", ["04Mar", "Mar-04", "04MAR", "3/11", "Aug"], ["NSTEMI"]),
        ("Strength 5/5, murmur 2/6, pain 7/10, Apgar 8/9, take 1/2 tab, BP 124/78.", [], ["5/5", "2/6", "7/10", "8/9", "1/2", "124/78"]),
        ("The patient, who is 91, a ninety-three year old man, in her 90s, aged 97, 98M, turned 90, a 100-year-old.",
         ["91", "ninety-three", "90s", "97", "98", "90", "100"], ["year old man"]),
        ("Faith Morningstar, ninety-one, from Pine Ridge. HR is 92, glucose 95 mg.", ["ninety-one"], ["HR is 92", "95 mg"]),
        ("Patient Odile Marchetti is 101; Mr. Sato was 93. Chloride is 102.", ["101", "93"], ["Chloride is 102"]),
        ("Address: 3 Kiln Row, Settle BD24 9AB, UK", ["Settle", "BD24"], ["UK"]),
        ("Łukasz Wróż (96) admitted; Zoë Aykaç, ninety-two, lives alone.", ["96", "ninety-two"], ["admitted"]),
        ("Call back at 555-1234, cell 555 0188; fax 617/555-0199; mobile +81 3-5555-0143, +44 20 7946 0958, 928-555-0131 x205.",
         ["555-1234", "0188", "617/555", "+81", "7946", "x205"], ["Call back at"]),
        ("Gave 100-1000 mg over 2 days.", [], ["100-1000 mg"]),
        ("Medicare MBI 1EG4-TE5-MK73, Tricare TRC0049918322, serial PZK408871S, plate 7KQR552, 4532 1234 5678.",
         ["1EG4", "TRC004", "PZK408871S", "7KQR552", "4532 1234"], ["Medicare MBI", "serial"]),
        ("COVID-19, HLA-B27, BRCA1, L4-L5, E11.65 and 1998-2004 stay.", [], ["COVID-19", "HLA-B27", "BRCA1", "L4-L5", "E11.65", "1998-2004"]),
        ("Lives in Truth or Consequences, NM. Resides at 14 Elm Close, Flat 2, Harrogate HG1 4QT.", ["Truth", "Consequences", "Elm Close", "Flat 2", "HG1"], ["NM"]),
        ("Address: RR 2 Box 117, Lone Pine, NE 68952; from Route 9; staying at a hotel in Rochester.", ["RR 2", "Lone Pine", "68952", "Route 9", "Rochester"], ["NE"]),
        ("Transferred from Mercy Ridge Community Hospital; works for Hartwell Plastics; employed by Delmar & Finch LLP.",
         ["Mercy Ridge", "Hartwell", "Delmar"], ["Transferred from"]),
        ("Seen in the Internal Medicine Clinic, the Cancer Center and the Division of Cardiology.", [], ["Internal Medicine Clinic", "Cancer Center", "Division of Cardiology"]),
        ("PMH: Wilson's, Addison's, CKD 3b. Wilson's, Addison's and Hodgkin's in family history.", [], ["Wilson's, Addison's", "Hodgkin's"]),
        ("Tel (04132) 5580194; texts to 61 482 337; home: 0744 219 5530. Dose 40 mg at 08 00, Hgb 12.5.",
         ["5580194", "61 482", "0744 219"], ["40 mg at 08 00", "12.5"]),
        ("Numbers: 31 77 20 04 (home) and (03841) 7720415 (work); took 2 x 500 mg (home) meds.", ["31 77", "7720415"], ["500 mg (home)"]),
        ("Plan card A712-4409-58; device 803-116-452; beneficiary 5KD2-R71-HA30. T4-T5-T6, L4-L5-S1 and CPT 99213 stay.",
         ["A712", "803-116", "5KD2"], ["T4-T5-T6", "L4-L5-S1", "CPT 99213"]),
        ("They keep a cabin near Tjällmo; grew up outside of Vila do Conde. Edema near the ankle.", ["Tjällmo", "Vila do Conde"], ["Edema near the ankle"]),
        ("Mail goes to 77 Quarry Lane, Elk Rapids 49629. Seen Sept. 3 and May. 21.", ["Elk Rapids", "49629", "Sept. 3", "May. 21"], ["Mail"]),
        ("pt john smith seen today with wife maria; f/u with dr okonkwo. DOE, JANE MRN 00482913. Her grandson Tyrell drove; goes by Bobby.",
         ["john", "maria", "okonkwo", "DOE", "JANE", "Tyrell", "Bobby"], ["wife", "MRN"]),
        # lower-case names whose surname no lexicon knows (an unknown word: no English or clinical word)
        ("Primary care is gary francischetto; seen jointly with ekin erkekli and bill de marco. Hx bell palsy, metformin daily.",
         ["gary", "francischetto", "ekin", "erkekli", "bill de marco"], ["bell palsy", "metformin daily"]),
        ("Collateral obtained from Dawid Visser; procedure performed with Versed and Lidocaine.", ["Dawid", "Visser"], ["Versed", "Lidocaine"]),
        ("Occupation: warehouse associate, Garmin. Formerly employed at DTE Energy; works at The Happy Bear. Occupation: retired, Lives alone.",
         ["Garmin", "DTE", "Happy Bear"], ["Lives alone", "warehouse associate"]),
        ("Postal address Johan de Walestraat 158, 1566 AJ Bussum. Or 120 Gjelstensåsen, DK-0623 Viby Sjælland. Room 4, bed 2.",
         ["Walestraat", "Bussum", "Gjelstensåsen", "Viby"], ["Postal address", "Room 4, bed 2"]),
        ("DOB 05161951, admitted 03/14/2024; spent the winter near Giugliano in Campania. Insurance card shows 118439.",
         ["0516", "Giugliano", "Campania", "118439"], ["DOB", "card shows"]),
        # fourth round: dictated, lower-case and form-filled dates; day numbers, doses and verbs stay
        ("seen april fourth and june the 2nd, the twenty-first of may, 9th august, nov 3; DOB : 07 - 04 - 1951, l2/O3/1947.",
         ["fourth", "2nd", "twenty-first", "9th", "nov 3", "07 - 04", "l2/O3"], ["DOB :"]),
        ("you may 2 times; march 5 mg; dec 2 units; on the 3rd; last Tuesday.", [], ["may 2 times", "march 5 mg", "dec 2 units", "the 3rd", "Tuesday"]),
        # lower-case names after informal relatives, roles and "name is"; a word name only when punctuation ends it
        ("my mum bronagh came; aunty ifeoma kalu rang; my name is edna mae holloway. dear nurse fern, thanks. son will call.",
         ["bronagh", "ifeoma", "kalu", "edna", "holloway", "fern"], ["son will call", "my mum"]),
        ("hi its gwendolyn again. this is really bad.", ["gwendolyn"], ["this is really bad"]),
        # capitals of a caps note; names beside a role in brackets; two capitalised words no vocabulary holds
        ("SON DERWENT AWARE. SPOUSE GLADYS NOTIFIED. PT EVAL DONE. Filled by Zoltan (tech); Bartok Ilonka saw her.",
         ["DERWENT", "GLADYS", "Zoltan", "Bartok"], ["AWARE", "NOTIFIED", "PT EVAL", "(tech)"]),
        ("Mom is more confused tonight. Vitals stable. Scarpa's fascia closed.", [], ["Vitals", "Mom is", "Scarpa's fascia"]),
        # UK/AU/CA/IN addresses, all caps and lower case; Indian and Canadian postal forms
        ("ADDRESS: FLAT 9, 41 HOLLYBANK PARADE, ORMSKIRK L39 2DX. were at 8 ironbark crescent now. took 2 pills on the way.",
         ["HOLLYBANK", "ORMSKIRK", "ironbark"], ["took 2 pills on the way"]),
        ("Unit 2/15 Gidgee Street, Yeppoon QLD 4703; 61 RUE DU PORTAGE GRANBY QC J2G 3C6; H.No. 88, Sector 21-B, Panchkula 134109.",
         ["Gidgee", "Yeppoon", "4703", "PORTAGE", "GRANBY", "88", "21-B", "Panchkula", "134109"], ["QC"]),
        ("she is home in wollongbar now; lives at the farm in tumbulgum. lives in a house.", ["wollongbar", "tumbulgum"], ["lives in a house"]),
        # trunk-prefixed and dictated phone numbers, spaced labelled IDs; counts in words stay
        ("ring (02) 6555 0187 or (0113) 496 0021; number is four one five five five five zero one nine two; took one two pills.",
         ["6555", "496 0021", "four one five"], ["one two pills"]),
        ("INSURANCE QX 448 120 937; health card 7731 204 556. BP 120 80.", ["448 120", "7731 204"], ["BP 120 80"]),
        ("EMPLOYER HALVERSON TIMBER AND SUPPLY; Mrs Ode from the Harrowgate Lane clinic; St Oswin's Infirmary; Memory clinic.",
         ["HALVERSON", "Harrowgate", "Oswin"], ["Memory clinic"]),
    ],
)
def test_safe_harbor_formats_by_the_rules_alone(rules, text, phi, kept):
    out = rules.deidentify(text).text
    for p in phi:
        assert p not in out, (p, out)
    for k in kept:
        assert k in out, (k, out)


def test_the_model_finds_names_and_places_without_cues(both, rules):
    text = "Olatunji called about his mother. Visiting from Harrogate."
    out = both.deidentify(text).text
    assert "Olatunji" not in out and "Harrogate" not in out, out
    assert "Olatunji" in rules.deidentify(text).text  # one word, no cue, no lexicon: only the model sees it
    assert "Olatunji" not in rules.deidentify("Babatunde Olatunji called.").text  # two words no vocabulary holds: the rules too


def test_model_output_keeps_clinical_words_credentials_and_states(both):
    ner = next(r for r in both.recognizers if isinstance(r, NerRecognizer))
    for text in ("Mallory-Weiss tear noted; his daughter, Mary Jones, was present.", "Dictated by: John Smith, M.D.",
                 "Transferred from Rochester, New York.", "Kelly clamp and Foley catheter; Wilson's disease."):
        found = [text[r.start : r.end] for r in ner.analyze(text)]
        assert not any(w in f for f in found for w in ("Mallory", "Weiss", "M.D", "New York", "Kelly", "Foley", "Wilson")), (text, found)
    text = "Seen for Bell's palsy. 102-yr-old with syncope."
    # "Bell" before "'s palsy" is an eponym as "Bell's" is; "102-yr-old" is an age, for the rules
    assert not ner._keep(text, 9, 13, PhiCategory.NAME) and not ner._keep(text, 23, 33, PhiCategory.ADDRESS)


def test_model_output_keeps_ordinary_words_and_times(both):
    ner = next(r for r in both.recognizers if isinstance(r, NerRecognizer))
    text = "Send urine for culture.\nAddendum: originally from Lima; moved here in May. Called at 0830 and at 02:14.\nSpoke with Hope."
    found = [text[r.start : r.end] for r in ner.analyze(text)]
    assert not any(w in f for f in found for w in ("Send", "Addendum", "moved here", "0830", "02:14")), found
    assert both.deidentify("DOB 05161951").text == "DOB [DATE]"
    text = "0700 pt alert. 0815 seen, Waterlow 14, visiting after 1800. ED NOTE 02:40. Consent for ERCP. Interpreter: Ana (Somali). you guys"
    found = [(text[r.start : r.end], r.entity_type) for r in ner.analyze(text)]
    assert not any(f == w for f, _ in found for w in ("0700", "0815", "14", "1800", "02:40", "ERCP", "Somali", "guys")), found


def test_lower_case_places_of_ordinary_words_stay_only_when_they_name_a_facility():
    from engine.deid.lexicons import load_lexicons
    from engine.deid.recognizers.facilities import named_facility

    lex = load_lexicons()
    for place in ("sunset lodge", "bay view pharmacy", "Quarry Manor"):
        assert named_facility(place.split(), lex), place
    for phrase in ("the clinic", "wound clinic", "nursing home", "moved here", "lodge", "your office"):
        assert not named_facility(phrase.split(), lex), phrase


def test_entities_inside_hyphenated_words_widen_to_the_whole_word():
    text = "Seen by Dr. Ana Ruiz-Lopez for a Jackson-Pratt drain."
    assert text[slice(*whole_words(text, 21, 26))] == "Ruiz-Lopez"  # "Lopez" alone would leave "Ruiz-"
    assert text[slice(*whole_words(text, 33, 41))] == "Jackson-Pratt"  # the eponym filter then sees the whole word
    assert text[slice(*whole_words(text, 12, 15))] == "Ana"


def test_trim_cuts_words_that_cannot_belong():
    text = "Pt stated that Kendra handles her finances. Visit 3/4/2020 done."
    s, e = trim(text, 3, 26, PhiCategory.NAME)
    assert text[s:e] == "Kendra"
    s, e = trim(text, 44, 58, PhiCategory.DATE)
    assert text[s:e] == "3/4/2020"
    assert trim("pt john smith", 3, 13, PhiCategory.NAME) == (3, 13)  # all lower case: kept


def test_long_notes_are_cut_at_line_breaks_with_offsets_kept(both):
    filler = "Vitals stable and exam unchanged today.\n" * 700  # ~28,000 characters: two model chunks
    text = filler + "Babatunde Olatunji called about his mother.\n" + filler
    r = both.deidentify(text)
    assert "Olatunji" not in r.text and r.text.count("Vitals stable") == 1400


def test_setting_chooses_the_recognisers(monkeypatch):
    assert any(isinstance(r, NerRecognizer) for r in make_deidentifier(EngineSettings()).recognizers)
    monkeypatch.setenv("ICDCODER_ENGINE_DEID_MODEL", "rules")
    assert not any(isinstance(r, NerRecognizer) for r in make_deidentifier(EngineSettings()).recognizers)
    with pytest.raises(ValueError, match="rules"):
        DeidConfig(model="ner")  # type: ignore[arg-type]


def test_model_ships_as_package_data_with_its_data_card():
    for name in ("config.cfg", "meta.json", "DATA_CARD.md", "training.json", "ner/model", "tok2vec/model"):
        assert (MODEL_DIR / name).is_file(), name
    with pytest.raises(FileNotFoundError, match="deid-model"):
        NerRecognizer(MODEL_DIR / "nowhere")


def test_rules_and_model_load_without_torch():
    code = ("import sys; from engine.deid import Deidentifier, DeidConfig; d = Deidentifier(DeidConfig()); "
            "d.deidentify('Sione Taufa called.'); assert 'torch' not in sys.modules, 'torch loaded'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
