"""Fine-tune all-MiniLM-L6-v2 for PHI token classification (BIO) and write the ONNX recogniser the engine serves.

    cfg = TransformerTrainConfig(data_dir=Path("../shared/data"), out=Path("engine/deid/transformer"))
    train_transformer(cfg)   # -> out/model.onnx (int8 unless quantize=False), tokenizer.json, tags.json, DATA_CARD.md

The documents are the spaCy model's (``trainer.deid_model.corpus``: same carriers, templates, generators and seed;
the first ``train_docs`` of its draw), cut into windows by ``schemas.text.segment_notes`` exactly as the engine cuts
notes. A word's tag sits on its first word piece; the other pieces are not scored (-100). CPU, seeded.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.deid.recognizers.transformer import LOGITS, MODEL_FILE, TAGS_FILE, TOKENIZER_FILE, TransformerTagger, continuation_pieces
from schemas.model_repo import ATTENTION_MASK, INPUT_IDS, SegmentationParams
from schemas.text import PAD, Segment, load_tokenizer, pad_batch, segment_notes
from trainer.deid_model.corpus import DocBuilder, TrainDoc, carrier_sentences
from trainer.deid_model.templates import LABELS
from trainer.encoder.load import minilm_dir

TAGS = ("O",) + tuple(f"{p}-{label}" for label in LABELS for p in "BI")
IGNORE = -100


@dataclass
class TransformerTrainConfig:
    data_dir: Path
    out: Path
    train_docs: int = 6000  # the shipped model (docs/deid.md, "Seventh round": 3,000 was tried)
    dev_docs: int = 300
    carriers: int = 12000  # as the spaCy model: the same carrier draw, so the documents are the same
    seed: int = 0
    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 16
    warmup: float = 0.1
    max_length: int = 256  # word pieces per window with [CLS] and [SEP]
    stride: int = 64  # pieces shared by consecutive windows
    quantize: bool = True
    fp32_out: Path | None = None  # also write the fp32 model folder here (measuring what int8 costs)
    extra: dict = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[deid-transformer {time.strftime('%H:%M:%S')}] {message}", flush=True)


def window_tags(doc: TrainDoc, segment: Segment, continuation: np.ndarray) -> list[int]:
    """Tag index per position of a window: B/I of the gold span a word's first piece overlaps, O outside, -100 on
    [CLS]/[SEP] and "##" pieces."""
    out = []
    last_span = None
    for token, (s, e) in zip(segment.input_ids, segment.offsets):
        if s == e or continuation[token]:
            out.append(IGNORE)
            continue
        span = next((k for k, (a, b, _) in enumerate(doc.spans) if s < b and e > a), None)
        if span is None:
            out.append(0)
        else:
            out.append(TAGS.index(f"{'B' if span != last_span else 'I'}-{doc.spans[span][2]}"))
        last_span = span
    return out


def windows(docs: list[TrainDoc], tokenizer, params: SegmentationParams, continuation: np.ndarray) -> list[tuple[Segment, list[int]]]:
    return [(seg, window_tags(docs[seg.note_index], seg, continuation)) for seg in segment_notes([d.text for d in docs], tokenizer, params)]


def batches(items: list, size: int, rng: random.Random) -> list[list]:
    """Length-sorted batches (little padding) in a shuffled order."""
    order = sorted(range(len(items)), key=lambda i: (len(items[i][0]), rng.random()))
    out = [[items[i] for i in order[b : b + size]] for b in range(0, len(order), size)]
    rng.shuffle(out)
    return out


def tensors(batch: list[tuple[Segment, list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, mask = pad_batch([seg for seg, _ in batch], pad_id, multiple=8)
    labels = np.full(ids.shape, IGNORE, dtype=np.int64)
    for row, (_, tags) in enumerate(batch):
        labels[row, : len(tags)] = tags
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(labels)


class _Logits(torch.nn.Module):
    """The served graph: (input_ids, attention_mask) -> logits [batch, tokens, tags]."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def export(model, folder: Path, example: tuple[torch.Tensor, torch.Tensor], quantize: bool, meta: dict) -> Path:
    """fp32 graph (eager attention, fused by onnxruntime's optimizer), int8 weights on request, + tokenizer and tags."""
    import warnings

    from trainer.export.onnx_graph import OPSET, eager_attention
    from trainer.export.optimize import fuse_encoder, quantize_int8

    folder.mkdir(parents=True, exist_ok=True)
    served = _Logits(model).eval()
    raw, fused = folder / "raw.onnx", folder / "fused.onnx"
    dynamic = {INPUT_IDS: {0: "batch", 1: "tokens"}, ATTENTION_MASK: {0: "batch", 1: "tokens"}, LOGITS: {0: "batch", 1: "tokens"}}
    with torch.no_grad(), warnings.catch_warnings(), eager_attention(served):
        warnings.simplefilter("ignore")
        torch.onnx.export(served, example, str(raw), input_names=[INPUT_IDS, ATTENTION_MASK], output_names=[LOGITS],
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    c = model.config
    fuse_encoder(raw, fused, c.num_attention_heads, c.hidden_size, c.num_hidden_layers)
    raw.unlink()
    if quantize:
        quantize_int8(fused, folder / MODEL_FILE)
        fused.unlink()
    else:
        fused.rename(folder / MODEL_FILE)
    shutil.copyfile(minilm_dir() / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    (folder / TAGS_FILE).write_text(json.dumps(meta, indent=1))
    return folder / MODEL_FILE


def parity(model, folder: Path, example: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """ONNX vs PyTorch logits on real windows: largest difference and the share of positions with the same tag."""
    from trainer.export.onnx_graph import onnx_session

    with torch.no_grad():
        expected = model(input_ids=example[0], attention_mask=example[1]).logits.numpy()
    got = onnx_session(folder / MODEL_FILE).run([LOGITS], {INPUT_IDS: example[0].numpy(), ATTENTION_MASK: example[1].numpy()})[0]
    real = example[1].numpy().astype(bool)
    return {"max_abs_logits": float(np.abs(expected - got)[real].max()), "same_tag": float((expected.argmax(-1) == got.argmax(-1))[real].mean())}


def dev_scores(folder: Path, docs: list[TrainDoc]) -> dict:
    """On the engine's decoding (raw entities, before the output filter): per label, recall of gold spans whose every
    character is inside a predicted entity, and precision of predicted entities overlapping a gold span."""
    tagger = TransformerTagger(folder, threads=1)
    predicted = [e for b in range(0, len(docs), 32) for e in tagger.entities([d.text for d in docs[b : b + 32]])]
    per_label = {}
    for label in LABELS:
        gold = caught = pred = right = 0
        for d, ents in zip(docs, predicted):
            mask = np.zeros(len(d.text) + 1, dtype=bool)
            for s, e, _ in ents:
                mask[s:e] = True
            for s, e, lab in d.spans:
                if lab == label:
                    gold += 1
                    chars = [i for i in range(s, e) if not d.text[i].isspace()]
                    caught += bool(mask[chars].all()) if chars else 1
            for s, e, lab in ents:
                if lab == label:
                    pred += 1
                    right += any(s < b and e > a for a, b, _ in d.spans)
        per_label[label] = {"gold": gold, "recall": caught / max(gold, 1), "predicted": pred, "precision": right / max(pred, 1)}
    gold = sum(v["gold"] for v in per_label.values())
    return {"per_label": per_label, "recall": sum(v["recall"] * v["gold"] for v in per_label.values()) / max(gold, 1),
            "precision": sum(v["precision"] * v["predicted"] for v in per_label.values()) / max(sum(v["predicted"] for v in per_label.values()), 1)}


def train_transformer(cfg: TransformerTrainConfig) -> dict:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertForTokenClassification, get_linear_schedule_with_warmup

    started = time.time()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    log(f"carrier sentences from {cfg.data_dir} (up to {cfg.carriers}) ...")
    carriers = carrier_sentences(cfg.data_dir, cfg.carriers, cfg.seed)
    split = len(carriers) * 9 // 10  # as trainer.deid_model.train: dev documents use carriers training never sees
    train_docs = DocBuilder(carriers[:split], cfg.seed).documents(cfg.train_docs)
    dev_docs = DocBuilder(carriers[split:], cfg.seed + 1).documents(cfg.dev_docs)
    tokenizer = load_tokenizer(minilm_dir() / TOKENIZER_FILE)
    continuation = continuation_pieces(tokenizer)
    params = SegmentationParams(max_length=cfg.max_length, stride=cfg.stride)
    train = windows(train_docs, tokenizer, params, continuation)
    pad_id = tokenizer.token_to_id(PAD)
    model = BertForTokenClassification.from_pretrained(str(minilm_dir()), num_labels=len(TAGS), id2label=dict(enumerate(TAGS)),
                                                       label2id={t: i for i, t in enumerate(TAGS)})
    steps = cfg.epochs * -(-len(train) // cfg.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * steps), steps)
    log(f"training on {len(train_docs)} documents ({len(train)} windows, {sum(len(d.spans) for d in train_docs)} PHI spans), "
        f"{cfg.epochs} epochs, {steps} steps of {cfg.batch_size}, lr {cfg.lr}, {torch.get_num_threads()} thread(s) ...")
    step, loop_start, losses = 0, time.time(), []
    model.train()
    for epoch in range(cfg.epochs):
        for batch in batches(train, cfg.batch_size, rng):
            ids, mask, labels = tensors(batch, pad_id)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            losses.append(loss.item())
            if step % 25 == 0 or step == steps:
                rate = step / (time.time() - loop_start)
                log(f"epoch {epoch + 1}/{cfg.epochs} step {step}/{steps} loss {np.mean(losses[-25:]):.4f} "
                    f"{rate * cfg.batch_size:.1f} windows/s, ETA {(steps - step) / rate / 60:.1f} min")
    model.eval()
    train_seconds = time.time() - loop_start
    dev = windows(dev_docs, tokenizer, params, continuation)
    example = tensors(dev[:8], pad_id)[:2]
    meta = {"tags": list(TAGS), "max_length": cfg.max_length, "stride": cfg.stride}
    folders = [(cfg.out, cfg.quantize)] + ([(cfg.fp32_out, False)] if cfg.fp32_out else [])
    scores = {}
    for folder, quantize in folders:
        if folder.exists():
            shutil.rmtree(folder)
        export(model, folder, example, quantize, meta)
        name = "int8" if quantize else "fp32"
        scores[name] = {"parity": parity(model, folder, example), "dev": dev_scores(folder, dev_docs),
                        "size_mb": round((folder / MODEL_FILE).stat().st_size / 1e6, 1)}
        log(f"{name}: {scores[name]['size_mb']} MB, parity {scores[name]['parity']}, dev recall {scores[name]['dev']['recall']:.4f} "
            f"precision {scores[name]['dev']['precision']:.4f}")
    card = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
            "tags": list(TAGS), "carrier_sentences": len(carriers), "carrier_sentences_train": split,
            "train_documents": len(train_docs), "train_windows": len(train), "train_spans": sum(len(d.spans) for d in train_docs),
            "train_spans_per_label": {lab: sum(1 for d in train_docs for *_, x in d.spans if x == lab) for lab in LABELS},
            "dev_documents": len(dev_docs), "steps": steps, "final_loss": float(np.mean(losses[-50:])),
            "train_loop_seconds": round(train_seconds, 1), "total_seconds": round(time.time() - started, 1),
            "threads": torch.get_num_threads(), "scores": scores}
    (cfg.out / "training.json").write_text(json.dumps(card, indent=1))
    log(f"wrote {cfg.out} in {card['total_seconds'] / 60:.1f} min")
    return card
