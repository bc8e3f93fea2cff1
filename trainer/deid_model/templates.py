"""Context sentences for the training data. ``{SLOT}`` is filled by ``fakes.Fakes``; its label (``SLOTS``)
is the NER label of the planted span (None: filled but not PHI, e.g. a state). Facilities and employers are
ADDRESS (HIPAA's geographic/organisational identifiers share the ``[ADDRESS]`` placeholder).

Written for training only; the evaluation templates (``bench/deid_eval``) are separate and different.
"""

from __future__ import annotations

SLOTS: dict[str, tuple[str, str | None]] = {  # slot -> (Fakes method, label)
    "NAME": ("name", "NAME"), "NAME2": ("name", "NAME"), "FIRST": ("first", "NAME"), "LAST": ("last", "NAME"),
    "LASTFIRST": ("last_first", "NAME"), "INITIALS": ("initials", "NAME"),
    "CITY": ("city", "ADDRESS"), "STATE": ("state", None), "ZIP": ("zip", "ADDRESS"), "STREET": ("street", "ADDRESS"),
    "FADDR": ("foreign_address", "ADDRESS"), "FACILITY": ("facility", "ADDRESS"), "EMPLOYER": ("employer", "ADDRESS"),
    "DATE": ("date", "DATE"), "DATE2": ("date", "DATE"), "PHONE": ("phone", "PHONE"), "ID": ("identifier", "ID"),
    "MBI": ("mbi", "ID"),
}
LABELS = ("NAME", "ADDRESS", "DATE", "PHONE", "ID")

TEMPLATES: tuple[str, ...] = (
    # names with and without cues
    "{NAME} called from {PHONE} asking about the results.",
    "Spoke with {NAME} at length about the plan.",
    "Spoke with {FIRST} (wife) who agrees with hospice referral.",
    "{NAME} (daughter) is the health care proxy.",
    "{FIRST} ({LAST}) brought him in this morning.",
    "{LASTFIRST} MRN {ID}",
    "{LASTFIRST}  DOB {DATE}  Acct {ID}",
    "Pt {NAME} seen today with wife {FIRST}.",
    "pt {NAME} seen today, accompanied by son {FIRST}.",
    "{NAME} states he stopped the medication two weeks ago.",
    "{NAME} reports that the pain is better.",
    "{NAME} denies chest pain.",
    "Per {NAME}, the patient fell at home on {DATE}.",
    "I discussed the case with {NAME} from cardiology.",
    "Case discussed with Dr {LAST} of nephrology, who recommends dialysis.",
    "Seen with {NAME}, PA-C.",
    "Note written by {INITIALS} for {NAME}.",
    "cc: {NAME}; {NAME2}",
    "Interpreter {NAME} was used for the visit.",
    "Her neighbor {FIRST} checks on her daily.",
    "Emergency contact: {NAME}, {PHONE}",
    "Next of kin: {LASTFIRST} (husband), tel {PHONE}",
    "Lives with her partner {NAME} and their dog.",
    "{FIRST} is a pleasant woman who presents for follow-up.",
    "Mr {LAST} was given discharge instructions.",
    "Ms {LAST}'s blood pressure remains elevated.",
    "The patient, {NAME}, was identified by name and date of birth.",
    "Paged {FIRST} in pharmacy about the dose.",
    "Hand-off given to {NAME} RN at 1900.",
    "Attending: {LAST}, {FIRST}",
    "Resident: {NAME}; Attending: {NAME2}",
    "The patient's son {NAME} will pick her up.",
    "Message left for {FIRST} {LAST} on voicemail.",
    "Verbal consent obtained from {NAME}, her niece.",
    "Signed: {NAME}, MD {DATE}",
    "{NAME}, NP",
    "Thank you, {NAME}.",
    "Dear {NAME},",
    "Therapist {FIRST} notes improved gait.",
    "{LAST} family at bedside.",
    # places, facilities, employers
    "Lives in {CITY}, {STATE} with her husband.",
    "He lives alone in {CITY}.",
    "Resides at {STREET}, {CITY}, {STATE} {ZIP}.",
    "Address: {STREET}, {CITY} {STATE} {ZIP}",
    "Home address {FADDR}.",
    "Visiting from {FADDR} for the summer.",
    "Recently moved here from {CITY}.",
    "Transferred from {FACILITY} for higher level of care.",
    "She was admitted to {FACILITY} on {DATE}.",
    "Discharged to {FACILITY}.",
    "Outside records from {FACILITY} were reviewed.",
    "Follows with cardiology at {FACILITY}.",
    "Works as a machinist at {EMPLOYER}.",
    "Employer: {EMPLOYER}",
    "He retired from {EMPLOYER} in 2015.",
    "Works night shifts for {EMPLOYER} in {CITY}.",
    "Grew up on a farm near {CITY}.",
    "Mailing address {STREET}, {CITY}, {STATE} {ZIP}.",
    "ZIP {ZIP}.",
    "Pharmacy: {FACILITY}, {PHONE}",
    # dates
    "Arrived {DATE} by ambulance.",
    "Admitted {DATE}, discharged {DATE2}.",
    "Last colonoscopy {DATE}, normal.",
    "DOB {DATE}",
    "Labs drawn {DATE}.",
    "Follow up on {DATE} in clinic.",
    "Symptoms began around {DATE}.",
    "Surgery was performed {DATE}.",
    "Seen in the ED on {DATE} for the same complaint.",
    "Date of service: {DATE}",
    "Specimen collected {DATE}.",
    "Next appointment {DATE}.",
    "MRI {DATE}: no acute findings.",
    "{DATE}: patient called, feels better.",
    # phones
    "Call back at {PHONE}.",
    "Contact number {PHONE}.",
    "Fax records to {PHONE}.",
    "Cell {PHONE}, home {PHONE}",
    "Daughter can be reached at {PHONE}.",
    "Reached the family at {PHONE} after two attempts.",
    # identifiers
    "MRN: {ID}",
    "Medical record number {ID}.",
    "Medicare MBI {MBI}.",
    "Medicare number {MBI}",
    "Member ID {ID}, group {ID}.",
    "Insurance policy {ID}.",
    "Pacemaker serial number {ID}.",
    "Device SN {ID} interrogated today.",
    "Insulin pump serial {ID}.",
    "Driver's license {ID}.",
    "Account {ID}",
    "Claim number {ID}.",
    "Passport {ID}.",
    "Specimen accession {ID}.",
    "Patient ID: {ID}",
    "Implant lot {ID}, ref {ID}.",
    # mixed header lines
    "Patient: {NAME}   DOB: {DATE}   MRN: {ID}",
    "{LASTFIRST}, {DATE}, {ID}",
    "Name: {NAME} Phone: {PHONE} Address: {STREET}, {CITY}, {STATE} {ZIP}",
    "Referred by {NAME} at {FACILITY} ({PHONE}).",
    "Transferred on {DATE} from {FACILITY} in {CITY}.",
)

# Names as the subject or object of ordinary clinical sentences, with no cue word: combined at random
# ("{NAME} tolerated the procedure.", "Message from {FIRST}: ...") so the model learns names from their
# position and shape, not from a fixed set of phrases.
SUBJECT_PREDICATES = (
    "tolerated the procedure well", "was given a prescription for amoxicillin", "agrees with the plan", "is requesting a refill",
    "missed her appointment", "will bring the medication list", "has been staying with the patient", "is the primary caregiver",
    "drove him to the clinic", "signed the consent", "was updated on the plan of care", "declined the flu vaccine",
    "came in with her mother", "returns for a wound check", "is here for a second opinion", "has no new complaints",
    "reports good adherence", "asked about home oxygen", "notes the swelling is worse", "understands the risks",
    "was at the bedside overnight", "handles her finances", "manages his medications", "will call with the results",
    "reviewed the images", "performed the procedure", "dictated this note", "completed the assessment",
)
OBJECT_PREFIXES = (
    "accompanied by", "Message from", "Voicemail from", "Per", "According to", "Spoke to", "Discussed with", "Seen together with",
    "Information provided by", "Care coordinated with", "Ride provided by", "Call from", "Letter from", "Forwarded by",
    "Please notify", "Results sent to", "Covering for", "Handed off to", "Collateral from", "Interpreted by",
)

# Sentences with clinical eponyms and word-like terms that are NOT PHI: the model must learn to leave them.
NON_PHI_TEMPLATES: tuple[str, ...] = (
    "History of {EPONYM} disease.",
    "Past medical history: {EPONYM}'s disease, {EPONYM2}'s disease, hypertension.",
    "PMH: {EPONYM}'s, {EPONYM2}'s, hypothyroidism.",
    "Positive {EPONYM} sign on exam.",
    "A {EPONYM} catheter was placed.",
    "Known {EPONYM} syndrome, followed by endocrinology.",
    "{EPONYM} score noted.",
    "Diagnosis: {EPONYM} disease with {EPONYM2} syndrome.",
    "Rule out {EPONYM}'s.",
)
