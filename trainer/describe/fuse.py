"""``trainer fuse``: add the description scorer and the fusion to a fine-tuned run.

1. catalogue (every billable code + the run's label space) and its term matrix (cached);
2. examples and neighbours from the TRAINING notes of the selection split (never the selection notes);
3. the selection notes scored by the run's classifier and by the description scorer; the fusion chosen there
   (``select``), once with the classifier (the served combination) and once without (the scorer alone);
   Before 2., unless ``tune.epochs`` is 0, the sentence encoder is fine-tuned on the training notes' coded sentences
   (``tune``; the training part only) and every embedding below is the tuned encoder's;
4. for serving, examples and neighbours rebuilt from every labelled training note (train + selection slice:
   cheap, and the rare codes gain their selection-slice examples); the classifier itself is not refit;
5. written to ``RUN/descriptions/`` and ``RUN/fusion.json`` (read by ``trainer evaluate`` and ``trainer export``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from schemas.cli import UserError
from schemas.descriptions import MAX_SENTENCE_TOKENS
from schemas.fusion import Fusion, Neighbours
from schemas.icd10cm import load_code_set
from schemas.model_repo import CATALOGUE_FILE, DESCRIPTIONS_DIR, NEIGHBOURS_FILE, TOKENIZER_FILE
from schemas.notes import NoteRecord
from schemas.text import load_tokenizer
from trainer.describe.build import (
    EmbeddedNotes,
    build_scorer,
    embed_notes,
    examples_and_neighbours,
    score_with,
    term_matrix,
)
from trainer.describe.catalogue import CodeCatalogue, build_catalogue
from trainer.describe.model import ENCODER_NAME, TUNED_ENCODER_NAME, DescriptionScorer, SentenceEncoder, load_sentence_encoder
from trainer.describe.select import Components, label_candidates, select_fusion
from trainer.describe.tune import EncoderTuning, TuneOptions, save_encoder, training_pairs, tune_encoder
from trainer.encoder import minilm_dir

log = logging.getLogger(__name__)
FUSION_FILE = "fusion.json"
TERMS_FILE = "terms.npy"
EXAMPLES_FILE = "examples.npz"
ENCODER_DIR = "encoder"  # RUN/descriptions/encoder: the tuned sentence encoder (absent: the shipped one)


class FusionFile(BaseModel):
    """RUN/fusion.json: the served combination and the description scorer alone, as selected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    served: Fusion  # classifier + kNN + titles/terms + training examples
    without_classifier: Fusion  # the same without the classifier (ablation)
    descriptions_only: Fusion  # titles and inclusion terms alone: no training data (ablation)
    encoder: str = ENCODER_NAME
    encoder_tuning: EncoderTuning | None = None  # how the encoder was tuned (None: as shipped)
    top_k: int
    max_sentence_tokens: int = MAX_SENTENCE_TOKENS
    candidates: int
    examples: int
    neighbours: int
    refit_on: str  # the notes the served examples and neighbours come from


@dataclass(frozen=True)
class FuseOptions:
    top_k: int = 32  # codes per sentence the graph returns (descriptions, and examples)
    cache_dir: Path | None = None  # term embeddings, reused across runs
    refit: bool = True  # serve examples/neighbours from every labelled training note
    progress: bool = True
    candidates: str = "billable"  # catalogue scope (describe.catalogue.SCOPES), always plus the label space and extra_codes
    extra_codes: tuple[str, ...] = ()
    tune: TuneOptions = field(default_factory=TuneOptions)  # the sentence encoder's fine-tuning (epochs 0: none)


@dataclass
class DescriptionModel:
    """A run's description scorer, loaded (PyTorch; what export turns into ONNX)."""

    catalogue: CodeCatalogue
    scorer: DescriptionScorer
    neighbours: Neighbours
    tokenizer: object  # tokenizers.Tokenizer
    fusion: FusionFile


def _gold(records: Sequence[NoteRecord]) -> list[tuple[str, ...]]:
    return [tuple(r.codes) for r in records]


def _concat(a: EmbeddedNotes, b: EmbeddedNotes) -> EmbeddedNotes:
    from dataclasses import replace

    shifted = [replace(s, note_index=s.note_index + a.n_notes) for s in b.sentences]
    return EmbeddedNotes(a.sentences + shifted, np.concatenate([a.embeddings, b.embeddings]), a.n_notes + b.n_notes)


def fuse_run(run_dir: Path, data_dir: Path, options: FuseOptions = FuseOptions()) -> FusionFile:
    from trainer.data.dataset import selection_split
    from trainer.models.scorer import load_scorer

    run_dir = Path(run_dir)
    try:
        classifier = load_scorer(run_dir, progress=options.progress)
        split = selection_split(data_dir)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"cannot fuse {run_dir} with {data_dir}: {err}") from None
    # every code of the labelled training notes is a candidate, also those below the label space's
    # --min-train-positives: the rare codes the classifier never learnt, which examples and kNN can still find
    known = set(classifier.labels.codes)
    seen = sorted({c for r in (*split.train, *split.select) for c in r.codes if c not in known})
    catalogue = build_catalogue(extra_codes=(*classifier.labels.codes, *filter(load_code_set().is_valid, seen), *options.extra_codes),
                                scope=options.candidates)
    encoder = SentenceEncoder(load_sentence_encoder())
    tokenizer = load_tokenizer(minilm_dir())
    terms = term_matrix(catalogue, encoder, tokenizer, options.cache_dir, options.progress)
    log.info("%d candidate codes, %d terms; selection: %s", len(catalogue), len(catalogue.terms), split.description)

    train_texts = [r.text for r in split.train]
    train_notes = embed_notes(train_texts, encoder, tokenizer, options.progress)
    tuning = None
    if options.tune.epochs:
        pairs = training_pairs(train_notes, train_texts, _gold(split.train), catalogue, terms)
        tuning = tune_encoder(encoder, pairs, catalogue, tokenizer, options.tune,
                              f"{len(split.train)} training notes (never the selection notes)", options.progress)
        terms = term_matrix(catalogue, encoder, tokenizer, None, options.progress)  # a tuned encoder is this run's own: no cache
        train_notes = embed_notes(train_texts, encoder, tokenizer, options.progress)
    examples, example_code, neighbours = examples_and_neighbours(train_notes, _gold(split.train), catalogue, terms)
    scorer = build_scorer(encoder, terms, catalogue, examples, example_code, options.top_k)
    select_texts = [r.text for r in split.select]
    scored = score_with(scorer, select_texts, tokenizer, options.progress)
    components = Components(catalogue.codes, scored, neighbours, classifier.score(select_texts), label_candidates(classifier.labels.codes, catalogue.codes))
    gold = _gold(split.select)
    variants = {name: select_fusion(components, gold, split.description, name) for name in ("without_classifier", "descriptions_only")}
    variants["served"] = select_fusion(components, gold, split.description, "served", also_from=variants["without_classifier"])

    refit_on = f"{len(split.train)} training notes"
    if options.refit and split.name == "train-slice":
        everything = _concat(train_notes, embed_notes(select_texts, encoder, tokenizer, options.progress))
        examples, example_code, neighbours = examples_and_neighbours(everything, _gold(split.train) + gold, catalogue, terms)
        refit_on = f"every labelled training note ({len(split.train)} + {len(split.select)} of the selection slice)"
    fusion = FusionFile(**variants, encoder=TUNED_ENCODER_NAME if tuning else ENCODER_NAME, encoder_tuning=tuning, top_k=options.top_k, candidates=len(catalogue), examples=len(examples),
                        neighbours=len(neighbours.embeddings), refit_on=refit_on)
    save_descriptions(run_dir, catalogue, terms, examples, example_code, neighbours, fusion, encoder if tuning else None)
    return fusion


def save_descriptions(run_dir: Path, catalogue: CodeCatalogue, terms: np.ndarray, examples: np.ndarray, example_code: np.ndarray,
                      neighbours: Neighbours, fusion: FusionFile, tuned: SentenceEncoder | None = None) -> None:
    out = Path(run_dir) / DESCRIPTIONS_DIR
    if (out / ENCODER_DIR).exists():  # an earlier fuse's tuned encoder must not outlive it
        shutil.rmtree(out / ENCODER_DIR)
    out.mkdir(parents=True, exist_ok=True)
    if tuned is not None:
        save_encoder(tuned, out / ENCODER_DIR)
    catalogue.save(out / CATALOGUE_FILE)
    np.save(out / TERMS_FILE, terms.astype(np.float32))
    np.savez(out / EXAMPLES_FILE, embeddings=examples.astype(np.float32), codes=example_code)
    save_neighbours(out / NEIGHBOURS_FILE, neighbours)
    shutil.copyfile(minilm_dir() / TOKENIZER_FILE, out / TOKENIZER_FILE)
    (Path(run_dir) / FUSION_FILE).write_text(fusion.model_dump_json(indent=2) + "\n", encoding="utf-8")


def save_neighbours(path: Path, neighbours: Neighbours) -> None:
    np.savez(path, embeddings=neighbours.embeddings, indptr=neighbours.indptr, codes=neighbours.codes)


def load_neighbours(path: Path) -> Neighbours:
    with np.load(path) as data:
        return Neighbours(data["embeddings"], data["indptr"], data["codes"])


def has_descriptions(run_dir: Path) -> bool:
    return (Path(run_dir) / FUSION_FILE).is_file()


def load_descriptions(run_dir: Path) -> DescriptionModel:
    """The description scorer a ``trainer fuse`` wrote into ``run_dir``."""
    run_dir = Path(run_dir)
    directory = run_dir / DESCRIPTIONS_DIR
    if not has_descriptions(run_dir):
        raise FileNotFoundError(f"{run_dir} has no {FUSION_FILE}: run `python -m trainer fuse --run {run_dir}` first")
    fusion = FusionFile.model_validate_json((run_dir / FUSION_FILE).read_text(encoding="utf-8"))
    catalogue = CodeCatalogue.load(directory / CATALOGUE_FILE)
    with np.load(directory / EXAMPLES_FILE) as data:
        examples, example_code = data["embeddings"], data["codes"]
    terms = np.load(directory / TERMS_FILE)
    tuned = directory / ENCODER_DIR
    encoder = SentenceEncoder(load_sentence_encoder(tuned if tuned.is_dir() else None))
    scorer = build_scorer(encoder, terms, catalogue, examples, example_code, fusion.top_k)
    return DescriptionModel(catalogue, scorer, load_neighbours(directory / NEIGHBOURS_FILE), load_tokenizer(directory / TOKENIZER_FILE), fusion)


