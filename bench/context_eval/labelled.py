"""The labelled evidence-context sets: condition mentions in MTSamples and CodiEsp sentences, each labelled
affirmed / negated / uncertain / historical / family by a person reading the sentence (docs/context.md has the
guidelines and how the labels were made).

The sets live in ``tests/data/context/{dev,report}.jsonl`` as references, never as text: document id, the
sentence's and the mention's character offsets in the document as the project reads it (MTSamples: the
de-duplicated transcription, ``trainer.data.importers.mtsamples``; CodiEsp: the English text file), the
mention's words, the label, and a hash of the sentence that catches a changed corpus. The texts are read
from ``$ICDCODER_DATA_DIR`` when scored.

``dev`` was used to write and tune ``engine/pipeline/context_rules.yaml``; ``report`` was labelled after the
rules were frozen and is the one the benchmark reports. The two sets come from disjoint documents (by a hash of
the document id), and sentences were picked by section and source strata with a fixed seed, never by the
presence of a cue (``sample_candidates``), so the classifier's recall is not flattered by the sampling.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from schemas.context import CONTEXTS

SETS_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "context"
SETS = ("dev", "report")
# Condition terms that mark what to label (only chosen to sample mentions; the classifier never sees this list).
MENTION_TERMS = """
pain fever cough pneumonia diabetes hypertension cancer carcinoma tumor tumour mass lesion nodule fracture infection
effusion edema oedema nausea vomiting diarrhea constipation dyspnea shortness-of-breath chest-pain headache dizziness
syncope seizure seizures stroke myocardial-infarction infarction murmur stenosis obstruction hemorrhage bleeding anemia
asthma copd emphysema bronchitis sinusitis otitis pharyngitis arthritis osteoarthritis depression anxiety hyperlipidemia
hypercholesterolemia obesity thrombosis embolism aneurysm ulcer hernia appendicitis cholecystitis pancreatitis hepatitis
cirrhosis colitis gastritis reflux dysphagia hematuria proteinuria renal-failure kidney-disease nephrolithiasis cyst
abscess cellulitis rash lymphadenopathy adenopathy splenomegaly hepatomegaly tenderness swelling weakness numbness
tingling fatigue weight-loss chills sweats palpitations arrhythmia atrial-fibrillation tachycardia bradycardia
heart-failure cardiomyopathy coronary-artery-disease angina ischemia neuropathy dementia migraine epilepsy metastasis
metastases lymphoma leukemia melanoma sarcoma polyp polyps diverticulitis diverticulosis hypothyroidism hyperthyroidism
goiter osteoporosis gout lupus tuberculosis hiv sepsis urinary-tract-infection incontinence dysuria jaundice ascites
pneumothorax atelectasis consolidation infiltrate cardiomegaly fibrosis glaucoma cataract hearing-loss vertigo tremor
hemiparesis aphasia confusion allergies dermatitis eczema psoriasis malignancy neoplasm alcoholism smoking
""".split()
_MENTION = re.compile(r"\b(" + "|".join(sorted((t.replace("-", r"\s+") for t in MENTION_TERMS), key=len, reverse=True)) + r")\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\n|(?<=[.!?])(?=[\s,]+[A-Z0-9(])|:[\s,]+(?=[A-Z])")
_HEADING = re.compile(r"(?<![A-Za-z0-9])([A-Z][A-Z/&() \-]{1,60}[A-Z)])\s*:")


@dataclass(frozen=True)
class LabelledMention:
    id: str
    source: str  # mtsamples | codiesp
    doc: str  # "mtsamples-<note_id>" or "codiesp/<split>/<file stem>"
    stratum: str
    sentence: tuple[int, int]
    mention: tuple[int, int]
    mention_text: str
    label: str | None  # a schemas.context class; None while unlabelled
    sentence_sha: str

    def to_json(self) -> dict:
        return {"id": self.id, "source": self.source, "doc": self.doc, "stratum": self.stratum, "sentence": list(self.sentence),
                "mention": list(self.mention), "mention_text": self.mention_text, "label": self.label, "sentence_sha": self.sentence_sha}

    @classmethod
    def from_json(cls, d: dict) -> "LabelledMention":
        return cls(d["id"], d["source"], d["doc"], d["stratum"], tuple(d["sentence"]), tuple(d["mention"]), d["mention_text"], d.get("label"), d["sentence_sha"])


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_documents(data_dir: Path, ids: set[str] | None = None) -> dict[str, str]:
    """Document id -> text, for MTSamples (de-duplicated, as the project reads it) and CodiEsp English train/background."""
    from trainer.data.importers.mtsamples import read_mtsamples

    docs: dict[str, str] = {}
    for record in read_mtsamples(Path(data_dir) / "mtsamples" / "mtsamples.csv"):
        if ids is None or record.note_id in ids:
            docs[record.note_id] = record.text
    for split in ("train", "background"):
        for path in sorted((Path(data_dir) / "codiesp" / split / "text_files_en").glob("*.txt")):
            doc = f"codiesp/{split}/{path.stem}"
            if ids is None or doc in ids:
                docs[doc] = path.read_text(encoding="utf-8")
    return docs


def _pool(doc: str) -> str:
    """Disjoint document pools: a third of the documents for the development set, the rest for the report set."""
    return "dev" if int(hashlib.sha256(doc.encode()).hexdigest(), 16) % 3 == 0 else "report"


def _stratum(doc: str, text: str, start: int) -> str:
    if doc.startswith("codiesp/"):
        return "codiesp"
    heading = None
    for m in _HEADING.finditer(text, 0, start):
        heading = m.group(1).upper()
    if heading is None:
        return "mt-other"
    if "FAMILY" in heading:
        return "mt-family"
    if re.search(r"PAST|PREVIOUS|PMH|PSH", heading) and "PRESENT" not in heading:
        return "mt-past"
    if "REVIEW OF SYSTEM" in heading or heading == "ROS":
        return "mt-ros"
    return "mt-other"


def _sentences(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for m in _SENTENCE_END.finditer(text):
        yield start, m.end()
        start = m.end()
    yield start, len(text)


def sample_candidates(data_dir: Path, pool: str, quotas: dict[str, int], seed: int = 17) -> list[LabelledMention]:
    """Sentences holding a condition mention, ``quotas[stratum]`` of each stratum, from documents of ``pool``.
    One mention per sentence (seeded choice), at most two sentences per document."""
    rng = random.Random(seed)
    by_stratum: dict[str, list[tuple[str, int, int, int, int]]] = {s: [] for s in quotas}
    docs = read_documents(data_dir)
    for doc, text in docs.items():
        if _pool(doc) != pool:
            continue
        for s, e in _sentences(text):
            sentence = text[s:e]
            words = len(sentence.split())
            if not 4 <= words <= 60:
                continue
            mentions = list(_MENTION.finditer(sentence))
            if not mentions or _HEADING.fullmatch(sentence.strip().rstrip(",")):
                continue
            m = rng.choice(mentions)
            stratum = _stratum(doc, text, s + m.start())
            if stratum in by_stratum:
                by_stratum[stratum].append((doc, s, e, s + m.start(), s + m.end()))
    out: list[LabelledMention] = []
    for stratum, quota in quotas.items():
        candidates = by_stratum[stratum]
        rng.shuffle(candidates)
        per_doc: dict[str, int] = {}
        for doc, s, e, ms, me in candidates:
            if len([x for x in out if x.stratum == stratum]) >= quota:
                break
            if per_doc.get(doc, 0) >= 2:
                continue
            per_doc[doc] = per_doc.get(doc, 0) + 1
            text = docs[doc]
            out.append(LabelledMention(f"{pool}-{len(out) + 1:03d}", "codiesp" if doc.startswith("codiesp/") else "mtsamples", doc, stratum,
                                       (s, e), (ms, me), text[ms:me], None, _sha(text[s:e])))
    return out


def load_set(name: str, data_dir: Path, sets_dir: Path = SETS_DIR) -> tuple[list[LabelledMention], dict[str, str]]:
    """The labelled mentions of set ``name`` and the texts of their documents; a changed corpus is an error."""
    path = Path(sets_dir) / f"{name}.jsonl"
    items = [LabelledMention.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs = read_documents(data_dir, {i.doc for i in items})
    for i in items:
        if i.doc not in docs:
            raise ValueError(f"{path}: {i.id}: document {i.doc} not found under {data_dir}")
        text = docs[i.doc]
        if _sha(text[i.sentence[0] : i.sentence[1]]) != i.sentence_sha or text[i.mention[0] : i.mention[1]] != i.mention_text:
            raise ValueError(f"{path}: {i.id}: the text of {i.doc} differs from the one labelled (another corpus version?)")
        if i.label not in CONTEXTS:
            raise ValueError(f"{path}: {i.id}: label {i.label!r} is not one of {CONTEXTS}")
    return items, docs
