"""Train the PHI NER pipeline (spaCy, CNN tok2vec, CPU) and write it with its data card.

    cfg = NerTrainConfig(data_dir=Path("../shared/data"), out=Path("engine/deid/model"))
    train_ner(cfg)   # -> out/ (a spaCy pipeline: config.cfg, meta.json, tok2vec/, ner/, ...) + out/DATA_CARD.md

Seeded end to end (carrier choice, planted values, spaCy's own seed): the same arguments give the same
documents; spaCy's training is deterministic on one CPU thread.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trainer.deid_model.corpus import DocBuilder, TrainDoc, carrier_sentences
from trainer.deid_model.fakes import DATE_FORMATS, NAME_LOCALES, PHONE_LOCALES, PLACE_LOCALES
from trainer.deid_model.templates import (CLAUSE_INTROS, LABELS, NON_PHI_TEMPLATES, OBJECT_PREFIXES, RELATIONS,
                                          SUBJECT_PREDICATES, TEMPLATES)


@dataclass
class NerTrainConfig:
    data_dir: Path
    out: Path
    train_docs: int = 9000
    dev_docs: int = 600
    carriers: int = 12000
    seed: int = 0
    max_epochs: int = 5
    width: int = 64  # tok2vec width: cost per token grows with width^2 (see docs/deid.md for the speed)
    depth: int = 3
    embed_rows: tuple[int, int, int, int] = (5000, 1000, 2500, 2500)  # NORM, PREFIX, SUFFIX, SHAPE
    hidden_width: int = 64
    eval_frequency: int = 400
    styled: bool = False  # round 5's carriers (trainer.deid_model.styles...): tried, not shipped (docs/deid.md)
    extra: dict = field(default_factory=dict)  # recorded in the data card (e.g. the command line)


def _config(cfg: NerTrainConfig):
    from spacy.cli.init_config import init_config

    c = init_config(lang="en", pipeline=["ner"], optimize="efficiency", gpu=False)
    c["system"]["seed"] = cfg.seed
    t = c["training"]
    t["max_epochs"], t["max_steps"], t["eval_frequency"], t["patience"] = cfg.max_epochs, 0, cfg.eval_frequency, 0
    c["training"]["logger"]["progress_bar"] = False
    c["components"]["tok2vec"]["model"]["encode"]["width"] = cfg.width
    c["components"]["tok2vec"]["model"]["encode"]["depth"] = cfg.depth
    c["components"]["tok2vec"]["model"]["embed"]["rows"] = list(cfg.embed_rows)
    c["components"]["ner"]["model"]["hidden_width"] = cfg.hidden_width
    return c


def _docbin(nlp, docs: list[TrainDoc]):
    from spacy.tokens import DocBin
    from spacy.util import filter_spans

    db = DocBin()
    dropped = 0
    for d in docs:
        doc = nlp.make_doc(d.text)
        ents = [doc.char_span(s, e, label=label, alignment_mode="expand") for s, e, label in d.spans]
        # a whitespace token inside an entity makes spaCy's NER oracle fail (E024): such spans are dropped and counted
        kept = filter_spans([e for e in ents if e is not None and not any(t.is_space for t in e)])
        dropped += len(d.spans) - len(kept)
        doc.ents = kept
        db.add(doc)
    return db, dropped


def _scores(nlp, docs: list[TrainDoc]) -> dict:
    """Entity P/R/F on documents, by label, plus character-level recall (every gold character redacted)."""
    from spacy.training import Example

    examples, chars, covered = [], 0, 0
    for d, doc in zip(docs, nlp.pipe([d.text for d in docs], batch_size=64)):
        ref = nlp.make_doc(d.text)
        ref.ents = [e for e in (ref.char_span(s, e, label=lab, alignment_mode="expand") for s, e, lab in d.spans) if e is not None]
        examples.append(Example(doc, ref))
        mask = bytearray(len(d.text))
        for ent in doc.ents:
            mask[ent.start_char : ent.end_char] = b"\x01" * (ent.end_char - ent.start_char)
        for s, e, _ in d.spans:
            chars += e - s
            covered += sum(mask[s:e])
    s = nlp.evaluate(examples)
    return {"ents_p": s["ents_p"], "ents_r": s["ents_r"], "ents_f": s["ents_f"], "char_recall": covered / chars if chars else None,
            "per_label": s["ents_per_type"]}


def train_ner(cfg: NerTrainConfig, log=print) -> dict:
    import spacy
    from spacy.cli.train import train as spacy_train

    started = time.time()
    log(f"carrier sentences from {cfg.data_dir} (up to {cfg.carriers}) ...")
    carriers = carrier_sentences(cfg.data_dir, cfg.carriers, cfg.seed)
    split = len(carriers) * 9 // 10  # dev documents use carrier sentences the training documents never see
    train_docs = DocBuilder(carriers[:split], cfg.seed, cfg.styled).documents(cfg.train_docs)
    dev_docs = DocBuilder(carriers[split:], cfg.seed + 1, cfg.styled).documents(cfg.dev_docs)
    nlp = spacy.blank("en")
    with tempfile.TemporaryDirectory(prefix="deid-ner-") as tmp:
        tmp_path = Path(tmp)
        train_db, dropped_train = _docbin(nlp, train_docs)
        dev_db, _ = _docbin(nlp, dev_docs)
        train_db.to_disk(tmp_path / "train.spacy")
        dev_db.to_disk(tmp_path / "dev.spacy")
        config_path = tmp_path / "config.cfg"
        _config(cfg).to_disk(config_path)
        log(f"training on {len(train_docs)} documents ({sum(len(d.spans) for d in train_docs)} PHI spans), "
            f"dev {len(dev_docs)} documents, {cfg.max_epochs} epochs ...")
        spacy_train(config_path, tmp_path / "output", use_gpu=-1,
                    overrides={"paths.train": str(tmp_path / "train.spacy"), "paths.dev": str(tmp_path / "dev.spacy")})
        best = tmp_path / "output" / "model-best"
        trained = spacy.load(best)
        dev = _scores(trained, dev_docs)
        if cfg.out.exists():
            shutil.rmtree(cfg.out)
        shutil.copytree(best, cfg.out)
    card = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "labels": list(LABELS),
        "carrier_sentences": len(carriers), "carrier_sentences_train": split,
        "train_documents": len(train_docs), "train_spans": sum(len(d.spans) for d in train_docs),
        "train_spans_dropped_by_token_alignment": dropped_train,
        "train_spans_per_label": {lab: sum(1 for d in train_docs for *_, x in d.spans if x == lab) for lab in LABELS},
        "dev_documents": len(dev_docs), "dev": dev,
        "templates": len(TEMPLATES), "non_phi_templates": len(NON_PHI_TEMPLATES),
        "subject_predicates": len(SUBJECT_PREDICATES), "object_prefixes": len(OBJECT_PREFIXES),
        "clause_intros": len(CLAUSE_INTROS), "relations": len(RELATIONS), "date_formats": len(DATE_FORMATS),
        "name_locales": NAME_LOCALES, "place_locales": sorted(set(PLACE_LOCALES)), "phone_locales": sorted(set(PHONE_LOCALES)),
        "train_seconds": round(time.time() - started, 1),
    }
    (cfg.out / "training.json").write_text(json.dumps(card, indent=1))
    write_data_card(cfg.out, card)
    log(f"dev: P {dev['ents_p']:.3f} R {dev['ents_r']:.3f} F {dev['ents_f']:.3f}, character recall {dev['char_recall']:.4f}")
    log(f"wrote {cfg.out} in {card['train_seconds'] / 60:.1f} min")
    return card


def write_data_card(out: Path, card: dict) -> None:
    dev = card["dev"]
    rows = "\n".join(f"| {lab} | {v['p']:.3f} | {v['r']:.3f} | {v['f']:.3f} |" for lab, v in sorted(dev["per_label"].items()))
    c = card["config"]
    text = f"""# Data card: the PHI NER pipeline of `engine.deid`

Built by `python -m trainer deid-model` (`trainer/deid_model/`), seed {c['seed']}. No real PHI: every
identifier in the training text is generated.

## Training data
- **Carrier text**: {card['carrier_sentences']:,} sentences (8-60 words) from MTSamples transcriptions (CC0) and
  CodiEsp English case reports (CC BY 4.0) in which the rule recognisers find no PHI; {card['carrier_sentences_train']:,}
  feed the training documents, the rest the dev documents.
- **Planted PHI**: {card['templates']} context templates (`trainer/deid_model/templates.py`), plus a name as
  the subject of {card.get('subject_predicates', 0)} predicates, after {card.get('object_prefixes', 0)} prefixes, after
  {card.get('clause_intros', 0)} reporting openings or beside {card.get('relations', 0)} relatives in apposition
  ("{{NAME}} tolerated the procedure", "Message from {{FIRST}}", "Nursing reports that {{FIRST}} has power of
  attorney", "Her son-in-law, {{NAME}}, ...": 40% of planted sentences); in 30% of carrier sentences one mention
  of the patient ("the patient", "he", "his"...) is replaced by a name, so names are seen in every position real
  clinical prose has; 8% of documents get a social-history line ("Occupation: welder, {{EMPLOYER}}"); filled by
  `faker` 40.54.0 (`trainer/deid_model/fakes.py`): names from {len(card['name_locales'])} locales
  ({', '.join(card['name_locales'])}), half ASCII-folded, ~8% given names/surnames that are English words,
  12% upper and 12% lower case, 10% `LAST, FIRST` in capitals; cities, streets, postcodes of
  {len(card['place_locales'])} locales, rural routes, UK-style flats, full foreign addresses in six orders, towns with a ZIP
  and no state; facilities; employers from faker and coined brand names with no company word
  ("Norvane", "Blue Heron", "Kessler's"); dates in {card.get('date_formats', 36)} formats (ISO 8601 with time,
  "04Mar2019", "Mar-04", "3/11", ...); phones of {len(card['phone_locales'])} locales and US formats (7 digits,
  slashes, extensions, international); MRNs, Medicare MBIs, plan, licence, device serial numbers.
  {card['non_phi_templates']} templates of clinical eponyms (from `engine/deid/data/clinical_allowlist.txt`) are
  left unlabelled so the model learns to keep them. 6% of documents are lower-cased, 3% upper-cased.
- **Labels**: {', '.join(card['labels'])} (facilities and employers are ADDRESS: `[ADDRESS]`).
- {card['train_documents']:,} training documents with {card['train_spans']:,} PHI spans
  ({', '.join(f'{k} {v:,}' for k, v in card['train_spans_per_label'].items())});
  {card['train_spans_dropped_by_token_alignment']} spans dropped (overlapping another after token alignment, or holding a whitespace token).

## Model
spaCy {_spacy_version()} `ner` with a `tok2vec` (MultiHashEmbed NORM/PREFIX/SUFFIX/SHAPE, rows
{c['embed_rows']}; MaxoutWindowEncoder width {c['width']}, depth {c['depth']}), hidden width
{c['hidden_width']}; {c['max_epochs']} epochs on CPU; blank English tokenizer. Served by
`engine/deid/recognizers/learned.py` (thinc on numpy, no torch).

## Scores on its own dev split ({card['dev_documents']} documents, same generator and templates, unseen carrier sentences)
Entity precision {dev['ents_p']:.3f}, recall {dev['ents_r']:.3f}, F {dev['ents_f']:.3f};
character recall (gold characters inside a predicted entity) {dev['char_recall']:.4f}.

| label | P | R | F |
| --- | ---: | ---: | ---: |
{rows}

These figures flatter the model: same generator and templates. The independent sets
(`python -m bench deid-eval`: hand-written notes and a mimesis generator, docs/deid.md) measure the
de-identifier, rules and model together, on data written without this generator; their figures for this
model are in docs/deid.md ("Measured on independent data") and in the bench summary (family `deid`).

Training took {card['train_seconds'] / 60:.1f} min of one thread (OMP_NUM_THREADS=1) on the shared 2-core development machine.
"""
    (out / "DATA_CARD.md").write_text(text, encoding="utf-8")


def _spacy_version() -> str:
    import spacy

    return spacy.__version__
