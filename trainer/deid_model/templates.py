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
    "FADDR": ("foreign_address", "ADDRESS"), "TOWNZIP": ("town_zip", "ADDRESS"), "FACILITY": ("facility", "ADDRESS"), "EMPLOYER": ("employer", "ADDRESS"),
    "DATE": ("date", "DATE"), "DATE2": ("date", "DATE"), "PHONE": ("phone", "PHONE"), "ID": ("identifier", "ID"),
    "MBI": ("mbi", "ID"),
    "WFIRST": ("word_first", "NAME"), "LPLACE": ("lower_place", "ADDRESS"), "LCITY": ("lower_city", "ADDRESS"),
    "REL": ("relative", None), "HHMM": ("clock", None),
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
    # names as predicate nominatives and in lists, no cue word right before them
    "Her PCP is {NAME} at {FACILITY}.",
    "His oncologist remains {NAME}.",
    "The covering physician tonight was {NAME}.",
    "Health care proxy: {LASTFIRST}.",
    "Decision maker is {NAME}, who lives in {CITY}.",
    "Outpatient psychiatrist {NAME} in {CITY} was notified.",
    "Present for the discussion: {NAME}, {NAME2} and the patient.",
    "Visitors today included {FIRST} and {FIRST}.",
    "{FIRST} and {FIRST} are both involved in her care.",
    "Ask for {FIRST} when calling the group home.",
    "Son ({NAME}) is the contact.",
    "Cosigned {NAME} {DATE}.",
    "Consult requested by {NAME} for possible sepsis.",
    "{NAME} {DATE} {PHONE}",
    "The daughter, {NAME}, reports poor intake.",
    "{LASTFIRST} ({DATE}) presents with dizziness.",
    "{LASTFIRST} is a {CITY} resident seen for cough.",
    # places without state, abroad, employers without a company word
    "Home address {STREET}, {TOWNZIP}.",
    "Mail to {STREET}, {TOWNZIP}.",
    "{STREET}, {TOWNZIP}",
    "Lives at {FADDR} with two children.",
    "Contact abroad: {FADDR}.",
    "Correspondence address: {FADDR}",
    "Her family home is in {CITY}.",
    "He spends summers in {CITY} and winters in {CITY}.",
    "Traveled to {CITY} last month for a wedding.",
    "Returned from {CITY} three days ago with fever.",
    "Patient is from {CITY} originally.",
    "Was working in {CITY} until recently.",
    "Works at {EMPLOYER} as a cashier.",
    "She is a bookkeeper for {EMPLOYER}.",
    "Drives a delivery truck for {EMPLOYER}.",
    "Laid off from {EMPLOYER} last year.",
    "Retired after 30 years at {EMPLOYER}.",
    "Job: forklift operator, {EMPLOYER}.",
    "Employed full time by {EMPLOYER}; exposure to solvents.",
    "Previously a welder at {EMPLOYER} in {CITY}.",
    "Insurance through {EMPLOYER}.",
    "Discharged to {FACILITY} on {DATE}.",
    "Resident of {FACILITY} since {DATE}.",
)

# Sentence openings after which a name is the subject of a reported clause ("Family states {NAME} has ..."):
# combined with SUBJECT_PREDICATES.
CLAUSE_INTROS = (
    "She says", "He says that", "Patient reports that", "Pt reports", "Nursing reports that", "Family states that",
    "The chart notes that", "Records indicate that", "I was told that", "We confirmed that", "She mentioned that",
    "He explained that", "It was reported that", "Apparently", "Per the family,", "Of note,", "Per report,", "Husband says",
    "The daughter reports that", "Staff at the facility say that", "Collateral suggests that", "Yesterday",
)
# Relatives and roles in apposition: "{RELATION}, {NAME}, ..." and "{NAME}, {RELATION}, ..."
RELATIONS = (
    "Her husband", "His wife", "The patient's sister", "The pt's daughter", "Her son-in-law", "His mother-in-law",
    "Her sister-in-law", "His stepson", "Her stepdaughter", "The patient's nephew", "Their neighbor", "His girlfriend",
    "Her fiance", "The patient's guardian", "Her caseworker", "His probation officer", "The home health aide",
    "Her roommate", "The pt's cousin", "His grandson", "Her granddaughter", "The patient's partner", "His brother",
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
    "pays for her prescriptions", "keeps track of his appointments", "lives two houses down", "picked her up from dialysis",
    "found him on the floor", "noticed the rash first", "has power of attorney", "wants to be called with updates",
    "is worried about her memory", "cooks all his meals", "has been giving him the insulin", "will stay overnight",
    "refuses a skilled nursing facility", "is moving in with her", "speaks only Portuguese", "was recently discharged",
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

# Round 5 (issue 14): carriers the first two rounds lacked. A given name that is also an ordinary word ({WFIRST}:
# "spoke with hope", "Will states") in the positions names take; form-like lines with padded labels and flowsheet
# rows; letters with salutations and sign-offs; portal messages (lower-cased and given typos by ``styles``);
# businesses and places in lower case, after a cue and without one.
WORD_NAME_TEMPLATES: tuple[str, ...] = (
    "Spoke with {WFIRST} about the discharge plan.", "{WFIRST} states she has not eaten since yesterday.",
    "Per {WFIRST} ({REL}), he fell twice this week.", "{WFIRST} (RN) aware of the potassium.", "{REL} {WFIRST} at bedside.",
    "Called {WFIRST} back, no answer.", "{WFIRST} says the pain is worse at night.", "Message left with {WFIRST}.",
    "{REL} {WFIRST} will drive her home.", "Ask for {WFIRST} at the front desk.", "Plan discussed with {WFIRST} and the patient.",
    "{WFIRST} and {FIRST} visited today.", "{REL} ({WFIRST}) reports more confusion.", "Report given to {WFIRST}.",
    "Her carer {WFIRST} helps with meals.", "{WFIRST} is worried he is not sleeping.", "Updated {WFIRST} by phone.",
    "Seen with {WFIRST}, who translated.", "{WFIRST} brought in the pill bottles.", "{WFIRST}'s number is on the board.",
    "Consent signed by {WFIRST} ({REL}).", "Per {WFIRST} he has been drinking more.", "{WFIRST} will call back after work.",
)
FORM_TEMPLATES: tuple[str, ...] = (
    "PATIENT NAME:   {LASTFIRST}        DOB:  {DATE}", "NAME {NAME}    MRN {ID}    DOA {DATE}",
    "Next of kin ....... {NAME} ({REL})    Tel ....... {PHONE}", "{HHMM} | BP 132/78 HR 84 | {FIRST} at bedside | {INITIALS}",
    "{HHMM} | resting, {REL} {WFIRST} visiting | {INITIALS}", "{HHMM} | po 240 ml | seen by {NAME} | {INITIALS}",
    "Carer: {NAME}   Tel: {PHONE}", "Address:  {STREET}   {CITY}  {ZIP}", "GP: Dr {NAME}, {FACILITY}", "Informant: {WFIRST} ({REL})",
    "Signature: {NAME}   Date: {DATE}", "Pharmacy:  {LPLACE}   Ph: {PHONE}", "Employer ......... {EMPLOYER}",
    "Contact 1: {NAME} / {REL} / {PHONE}", "Rec'd from: {FACILITY}   Fax: {PHONE}   Date: {DATE}", "Seen by: {INITIALS}  {HHMM}",
)
LETTER_TEMPLATES: tuple[str, ...] = (
    "Dear Dr {LAST},", "Dear {FIRST},", "Re: {NAME}, DOB {DATE}, {STREET}, {CITY}", "Thank you for referring {NAME} to our clinic.",
    "Yours sincerely,\n{NAME}", "Kind regards,\n{FIRST}", "With best wishes,\nDr {NAME}\nConsultant Physician, {FACILITY}",
    "I saw {FIRST} today in clinic with her husband {WFIRST}.", "Many thanks for seeing {FIRST} {LAST}.", "Dear colleague, re: {LASTFIRST}",
    "Best,\n{WFIRST}", "{FACILITY}\n{STREET}\n{CITY} {ZIP}\nTel {PHONE}", "We would be grateful if you could see {NAME} again.",
)
PORTAL_TEMPLATES: tuple[str, ...] = (
    "hi this is {FIRST}, {NAME2}'s daughter. she is still coughing", "hello dr {LAST} my {REL} {WFIRST} has had a fever since {DATE}",
    "can you call me back on {PHONE} thanks {FIRST}", "thx, {WFIRST}", "my husband {FIRST} picked up the meds from {LPLACE} but the dose is different",
    "{WFIRST} here, i missed my appt on {DATE} can i rebook", "we moved to {LCITY} last month so please send letters to {STREET}",
    "she works at {LPLACE} and cant get time off", "its {WFIRST} again, the rash is spreading", "please tell {WFIRST} i said thank you",
    "{WFIRST} said to message you if it got worse", "my {REL} {FIRST} will bring him, we are coming from {LCITY}",
)
LOWER_PLACE_TEMPLATES: tuple[str, ...] = (
    "Picked up her prescriptions at {LPLACE} on the way home.", "Works the night shift at {LPLACE}.", "{LPLACE} called about the refill.",
    "Was at {LPLACE} when she felt dizzy.", "Lives out past {LCITY} with her son.", "Drove in from {LCITY} this morning.",
    "Goes to church at {LPLACE} on Sundays.", "{LPLACE} faxed over the medication list.", "Recently started a job at {LPLACE}.",
    "Her daughter manages {LPLACE} in {LCITY}.", "Transferred from {LPLACE} after a fall.", "Gets her insulin from {LPLACE}.",
)
