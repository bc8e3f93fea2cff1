"""Word lists for the synthetic-note generator (``trainer.data.synthetic``).

Everything here is invented for testing: names are common first and last names combined at random (no
real person's data), phone numbers use the fictional 555 exchange, e-mails and URLs use example domains.
Clinical eponyms (Parkinson, Crohn, Babinski, Foley, ...) are deliberately absent from the surname list:
they appear only inside clinical phrases and are never PHI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    """An ICD-10-CM 2026 code with several ways a clinician might write it."""

    code: str
    phrasings: tuple[str, ...]
    chronic: bool  # chronic conditions recur in a patient's later notes
    medication: str | None = None


CONDITIONS: tuple[Condition, ...] = (
    Condition("I10", ("essential hypertension", "hypertension", "HTN, well controlled", "high blood pressure", "primary hypertension"), True, "lisinopril 10 mg daily"),
    Condition("E11.9", ("type 2 diabetes mellitus", "T2DM without complications", "diabetes mellitus type II", "non-insulin-dependent diabetes", "type 2 diabetes, diet controlled"), True, "metformin 500 mg twice daily"),
    Condition("E11.65", ("type 2 diabetes with hyperglycemia", "poorly controlled type 2 diabetes, A1c 10.2%", "uncontrolled T2DM with hyperglycemia"), True, "insulin glargine 20 units at bedtime"),
    Condition("N18.30", ("chronic kidney disease stage 3", "CKD stage 3", "CKD III, stable creatinine"), True, None),
    Condition("N18.9", ("chronic kidney disease", "CKD, stage not documented", "chronic renal insufficiency"), True, None),
    Condition("J44.9", ("COPD", "chronic obstructive pulmonary disease", "chronic obstructive lung disease", "COPD, stable on inhalers"), True, "tiotropium 18 mcg inhaled daily"),
    Condition("J45.909", ("asthma", "asthma, uncomplicated", "reactive airway disease (asthma)", "intermittent asthma without exacerbation"), True, "albuterol inhaler as needed"),
    Condition("I48.91", ("atrial fibrillation", "AF", "a-fib with controlled ventricular rate", "paroxysmal irregularly irregular rhythm consistent with atrial fibrillation"), True, "apixaban 5 mg twice daily"),
    Condition("I50.9", ("heart failure", "congestive heart failure", "CHF", "chronic heart failure, NYHA class II"), True, "furosemide 40 mg daily"),
    Condition("I25.10", ("coronary artery disease", "CAD", "atherosclerotic heart disease of native coronary artery", "known coronary disease without angina"), True, "atorvastatin 40 mg nightly"),
    Condition("E78.5", ("hyperlipidemia", "high cholesterol", "dyslipidemia", "elevated LDL cholesterol"), True, "simvastatin 20 mg nightly"),
    Condition("K21.9", ("GERD", "gastroesophageal reflux disease", "acid reflux", "reflux disease without esophagitis"), True, "omeprazole 20 mg daily"),
    Condition("E03.9", ("hypothyroidism", "underactive thyroid", "primary hypothyroidism on replacement"), True, "levothyroxine 75 mcg daily"),
    Condition("E66.9", ("obesity", "obesity, BMI 34", "obese habitus"), True, None),
    Condition("D64.9", ("anemia", "anemia, unspecified", "low hemoglobin consistent with anemia", "normocytic anemia"), False, "ferrous sulfate 325 mg daily"),
    Condition("F32.A", ("depression", "depressive disorder", "depressed mood, clinical depression", "depression, unspecified"), True, "sertraline 50 mg daily"),
    Condition("F41.1", ("generalized anxiety disorder", "GAD", "chronic generalized anxiety"), True, "buspirone 10 mg twice daily"),
    Condition("G47.33", ("obstructive sleep apnea", "OSA on CPAP", "sleep apnea, obstructive"), True, None),
    Condition("E55.9", ("vitamin D deficiency", "low vitamin D", "hypovitaminosis D"), False, "cholecalciferol 2000 units daily"),
    Condition("M81.0", ("osteoporosis", "age-related osteoporosis", "postmenopausal osteoporosis without fracture"), True, "alendronate 70 mg weekly"),
    Condition("M17.11", ("osteoarthritis of the right knee", "right knee OA", "primary osteoarthritis, right knee"), True, None),
    Condition("M10.9", ("gout", "gouty arthritis", "gout flare"), True, "allopurinol 100 mg daily"),
    Condition("M54.50", ("low back pain", "lumbago", "lower back pain"), False, None),
    Condition("N40.0", ("benign prostatic hyperplasia", "BPH", "enlarged prostate without urinary symptoms"), True, "tamsulosin 0.4 mg daily"),
    Condition("G43.909", ("migraine", "migraine headaches", "migraine without status migrainosus"), True, "sumatriptan 50 mg as needed"),
    Condition("F17.210", ("nicotine dependence, cigarettes", "current smoker, one pack per day", "tobacco use disorder (cigarettes)"), True, None),
    Condition("G20.A1", ("Parkinson disease", "Parkinson's disease without dyskinesia", "idiopathic Parkinson disease"), True, "carbidopa-levodopa 25/100 three times daily"),
    Condition("G30.9", ("Alzheimer disease", "Alzheimer's dementia", "probable Alzheimer disease"), True, "donepezil 10 mg nightly"),
    Condition("K50.90", ("Crohn disease", "Crohn's disease without complications", "Crohn ileitis, quiescent"), True, "mesalamine 800 mg three times daily"),
    Condition("E05.00", ("Graves disease", "Graves' disease without thyroid storm", "diffuse toxic goiter (Graves)"), True, "methimazole 10 mg daily"),
    Condition("E24.9", ("Cushing syndrome", "Cushing's syndrome", "hypercortisolism (Cushing syndrome)"), True, None),
    Condition("C81.90", ("Hodgkin lymphoma", "Hodgkin's lymphoma", "classical Hodgkin lymphoma"), True, None),
    Condition("G51.0", ("Bell palsy", "Bell's palsy", "right-sided Bell palsy"), False, "prednisone 60 mg daily for 7 days"),
    Condition("J18.9", ("pneumonia", "community-acquired pneumonia", "right lower lobe pneumonia", "lobar pneumonia"), False, "ceftriaxone 1 g IV daily"),
    Condition("N39.0", ("urinary tract infection", "UTI", "cystitis (UTI)", "urine infection"), False, "nitrofurantoin 100 mg twice daily"),
    Condition("J06.9", ("upper respiratory infection", "URI", "viral upper respiratory tract infection", "common cold"), False, None),
    Condition("L03.90", ("cellulitis", "cellulitis of the lower leg", "skin and soft tissue infection (cellulitis)"), False, "cephalexin 500 mg four times daily"),
    Condition("A41.9", ("sepsis", "sepsis of unclear source", "septicemia"), False, "piperacillin-tazobactam IV"),
    Condition("R07.9", ("chest pain", "atypical chest pain", "chest discomfort"), False, None),
    Condition("E87.1", ("hyponatremia", "low sodium", "hyponatremia, sodium 128"), False, None),
    Condition("I63.9", ("ischemic stroke", "cerebral infarction", "acute stroke"), False, "aspirin 81 mg daily"),
    Condition("K59.00", ("constipation", "chronic constipation", "slow bowel habit (constipation)"), False, "polyethylene glycol 17 g daily"),
)

# Distractors: eponyms and negated findings that name no code of the note.
EPONYM_FINDINGS = (
    "Babinski sign negative bilaterally",
    "no Babinski sign",
    "Foley catheter removed without difficulty",
    "Foley catheter in place, draining clear urine",
    "Murphy sign negative",
    "McBurney point nontender",
    "Homans sign negative",
    "Romberg test negative",
    "Kernig and Brudzinski signs absent",
    "Glasgow Coma Scale 15",
    "Apgar history not available",
)
# (sentence, codes it must not appear with: it denies them)
NEGATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Denies chest pain, palpitations or syncope.", ("R07.9", "I48.91")),
    ("No fever, chills or night sweats.", ("J18.9", "A41.9", "N39.0", "L03.90", "J06.9")),
    ("Denies shortness of breath at rest.", ("J44.9", "J45.909", "I50.9", "J18.9")),
    ("No history of diabetes or thyroid disease.", ("E11.9", "E11.65", "E03.9", "E05.00")),
    ("Denies dysuria or hematuria.", ("N39.0",)),
    ("No nausea, vomiting or diarrhea.", ()),
    ("Denies headache or visual changes.", ("G43.909",)),
    ("No known drug allergies.", ()),
    ("Negative for Parkinson disease or tremor in the family.", ("G20.A1",)),
    ("No family history of Crohn disease or Hodgkin lymphoma.", ("K50.90", "C81.90")),
    ("No features of Cushing syndrome on exam.", ("E24.9",)),
    ("No signs of Graves disease; thyroid not enlarged.", ("E05.00",)),
    ("Mother had Alzheimer disease in her eighties.", ()),
)
COMPLAINTS = (
    "follow-up of chronic conditions", "cough and fever for three days", "shortness of breath",
    "fatigue", "medication refill", "dizziness", "burning with urination", "knee pain", "headache",
    "swelling of both legs", "annual physical", "palpitations", "abdominal pain", "rash on the leg",
)
EXAM_LINES = (
    "General: alert, oriented, in no acute distress.",
    "HEENT: normocephalic, atraumatic; oropharynx clear.",
    "Neck: supple, no lymphadenopathy, no JVD.",
    "Lungs: clear to auscultation bilaterally, no wheezes or rales.",
    "Heart: regular rate and rhythm, no murmurs, rubs or gallops.",
    "Abdomen: soft, nontender, nondistended, normal bowel sounds.",
    "Extremities: no cyanosis, clubbing or edema.",
    "Skin: warm and dry, no rashes.",
    "Neuro: cranial nerves II-XII grossly intact, strength 5/5 throughout.",
    "Psych: normal mood and affect.",
)
PLAN_LINES = (
    "Continue current medications.", "Check basic metabolic panel and CBC.", "Return to clinic in 3 months.",
    "Encouraged regular exercise and a low-sodium diet.", "Reviewed warning signs and when to seek care.",
    "Refer to physical therapy.", "Repeat labs in 6 weeks.", "Smoking cessation counselling provided.",
    "Vaccinations reviewed and updated.", "Patient verbalized understanding of the plan.",
)
# Extra text that makes a note long (> 512 word pieces) without adding codes.
LONG_FILLER = (
    "Review of systems was otherwise negative in all twelve systems reviewed, including constitutional, "
    "eyes, ears, nose and throat, cardiovascular, respiratory, gastrointestinal, genitourinary, "
    "musculoskeletal, integumentary, neurological, psychiatric, endocrine and hematologic systems.",
    "Laboratory results: sodium 139, potassium 4.2, chloride 101, bicarbonate 25, BUN 18, creatinine 1.0, "
    "glucose 112, calcium 9.4, white count 7.8, hemoglobin 13.1, hematocrit 39.5, platelets 245.",
    "The patient was counselled at length regarding diet, activity, medication adherence and follow-up. "
    "Questions were answered to the patient's satisfaction and written instructions were provided.",
    "Social history: lives at home, independent in activities of daily living, drinks alcohol rarely, "
    "walks for exercise most days of the week, works part time.",
    "Imaging reviewed: chest radiograph without acute cardiopulmonary process; heart size within normal "
    "limits; no pleural effusion or pneumothorax identified.",
    "Functional status: ambulates without assistive device, climbs one flight of stairs without stopping, "
    "manages own medications with a weekly pill organizer.",
    "Medication reconciliation was performed with the patient and the pharmacy list; no discrepancies "
    "were identified and no interactions of concern were found.",
)

# Section headings in three house styles; one style per note.
SECTION_HEADERS: dict[str, tuple[str, str, str]] = {
    "cc": ("CHIEF COMPLAINT:", "Chief Complaint:", "CC:"),
    "hpi": ("HISTORY OF PRESENT ILLNESS:", "History of Present Illness:", "HPI:"),
    "pmh": ("PAST MEDICAL HISTORY:", "Past Medical History:", "PMH:"),
    "meds": ("MEDICATIONS:", "Medications:", "Meds:"),
    "social": ("SOCIAL HISTORY / CONTACT:", "Social History and Contact:", "SH/Contact:"),
    "exam": ("PHYSICAL EXAM:", "Physical Examination:", "PE:"),
    "interval": ("INTERVAL HISTORY AND REVIEW:", "Interval History and Review:", "Interval hx:"),
    "assessment": ("ASSESSMENT:", "Assessment:", "A:"),
    "plan": ("PLAN:", "Plan:", "P:"),
}

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
    "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Margaret", "Steven", "Sandra",
    "Paul", "Ashley", "Andrew", "Emily", "Kevin", "Donna", "Brian", "Michelle", "George", "Carol",
    "Maria", "Jose", "Luis", "Ana", "Wei", "Mei", "Ahmed", "Fatima", "Priya", "Raj", "Olga", "Ivan",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Okafor", "Kowalski", "Schmidt", "Chen", "Patel", "Kim", "Novak", "Haddad", "Larsen", "O'Brien",
)
RELATIONS = ("wife", "husband", "daughter", "son", "sister", "brother", "niece", "caregiver")
STREET_NAMES = ("Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Main", "Sunset", "Willow")
STREET_TYPES = ("Street", "Avenue", "Road", "Lane", "Drive", "Court", "Blvd", "St.", "Ave")
CITIES = ("Springfield", "Riverton", "Fairview", "Greenville", "Madison", "Georgetown", "Salem", "Clinton", "Ashland", "Oakdale")
STATES = ("IL", "OH", "NY", "TX", "CA", "WA", "MA", "GA", "PA", "MN")  # states are not PHI under Safe Harbor
NOTE_TYPES = ("Progress note", "Discharge summary", "Clinic visit", "Consultation", "Emergency department note", "History and physical")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")
