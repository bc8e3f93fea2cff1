"""The description scorer of a run (``trainer fuse``) -> its own Triton model beside the classifier.

    <repository>/<name>_descriptions/config.pbtxt           (+ configs/<variant>.pbtxt), like the classifier's
    <repository>/<name>_descriptions/<version>/model.onnx   sentence encoder + term/example matrices + top-k
    <repository>/<name>/<version>/descriptions/             catalogue.json, neighbours.npz, tokenizer.json (engine side)

A separate graph on purpose: the classifier's encoder graph changes on its own (fused attention, int8), and
the scorer's sentence batches have nothing in common with the classifier's segments. Same version number as
the classifier; ``metadata.json`` names it (``description_scorer``) and holds the fusion.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from schemas.descriptions import SENTENCE_ATTENTION_MASK, SENTENCE_INPUT_IDS
from schemas.model_repo import CATALOGUE_FILE, DESCRIPTIONS_DIR, NEIGHBOURS_FILE, TOKENIZER_FILE, DescriptionScorerInfo
from schemas.text import PAD, pad_batch
from trainer.describe.fuse import DescriptionModel, save_neighbours
from trainer.describe.model import OUTPUT_NAMES
from trainer.export.onnx_graph import OPSET, onnx_session

log = logging.getLogger(__name__)
SUFFIX = "_descriptions"
PARITY_TOLERANCE = 1e-4


def scorer_model_name(name: str) -> str:
    return f"{name}{SUFFIX}"


def export_scorer_onnx(model: DescriptionModel, path: Path) -> None:
    import onnx

    ids, mask = _example(model, ["Hypertension and type 2 diabetes.", "No fever; the patient denies chest pain at rest today."])
    dynamic = {SENTENCE_INPUT_IDS: {0: "sentences", 1: "tokens"}, SENTENCE_ATTENTION_MASK: {0: "sentences", 1: "tokens"}}
    dynamic.update({name: {0: "sentences"} for name in OUTPUT_NAMES})
    model.scorer.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.scorer, (torch.from_numpy(ids), torch.from_numpy(mask)), str(path), input_names=[SENTENCE_INPUT_IDS, SENTENCE_ATTENTION_MASK],
                          output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    onnx.checker.check_model(str(path))


def _example(model: DescriptionModel, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from schemas.descriptions import note_sentences

    sentences = note_sentences(texts, model.tokenizer)
    return pad_batch([s.segment for s in sentences], model.tokenizer.token_to_id(PAD), multiple=8)


def check_scorer_parity(model: DescriptionModel, path: Path) -> float:
    """Largest |similarity| difference ONNX vs PyTorch where the two agree on the codes (raises if a code
    differs anywhere its similarity is clear of the next one)."""
    session = onnx_session(path)
    texts = ["Chest X-ray showed a right lower lobe pneumonia.", "She has a history of essential hypertension; on enalapril.",
             "Renal cyst of 3 cm in the left kidney. Acute appendicitis was ruled out.", "Pain"]
    ids, mask = _example(model, texts)
    with torch.no_grad():
        expected = [t.numpy() for t in model.scorer(torch.from_numpy(ids), torch.from_numpy(mask))]
    got = session.run(list(OUTPUT_NAMES), {SENTENCE_INPUT_IDS: ids, SENTENCE_ATTENTION_MASK: mask})
    worst = 0.0
    for codes_i, sims_i in ((0, 1), (2, 3)):
        worst = max(worst, float(np.abs(expected[sims_i] - got[sims_i]).max()))
        # a position is checked where its similarity is clear of both neighbours; never the last one, which may
        # tie with the first row the top-k cut off (identical example sentences of different codes are common)
        sims = expected[sims_i]
        clear = np.abs(np.diff(sims, axis=-1, append=sims[:, -1:])) > 1e-4
        clear &= np.abs(np.diff(sims, axis=-1, prepend=np.inf)) > 1e-4
        if not (expected[codes_i] == got[codes_i])[clear].all():
            raise ValueError(f"the exported description scorer ranks codes differently from PyTorch ({OUTPUT_NAMES[codes_i]})")
    worst = max(worst, float(np.abs(expected[4] - got[4]).max()))
    if worst > PARITY_TOLERANCE:
        raise ValueError(f"the exported description scorer differs from PyTorch by {worst:.2e} (tolerance {PARITY_TOLERANCE:g})")
    return worst


def write_engine_files(model: DescriptionModel, run_dir: Path, version_dir: Path) -> Path:
    """The files the engine reads beside metadata.json: catalogue, neighbours, the scorer's tokenizer."""
    out = version_dir / DESCRIPTIONS_DIR
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(run_dir) / DESCRIPTIONS_DIR / CATALOGUE_FILE, out / CATALOGUE_FILE)
    save_neighbours(out / NEIGHBOURS_FILE, model.neighbours)
    shutil.copyfile(Path(run_dir) / DESCRIPTIONS_DIR / TOKENIZER_FILE, out / TOKENIZER_FILE)
    return out


def scorer_info(model: DescriptionModel, name: str) -> DescriptionScorerInfo:
    f = model.fusion
    return DescriptionScorerInfo(model_name=scorer_model_name(name), encoder=f.encoder, candidates=f.candidates, terms=len(model.catalogue.terms),
                                 examples=f.examples, neighbours=f.neighbours, top_k=f.top_k, max_sentence_tokens=f.max_sentence_tokens,
                                 refit_on=f.refit_on)

