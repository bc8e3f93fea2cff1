"""Inference speed of one exported BERT-XML on the same MTSamples notes, measured side by side in one run:

- runtime: onnxruntime (the exported ``model.onnx``, through the engine's ``LocalOnnxBackend``) vs PyTorch
  eager (the same weights wrapped exactly as exported, ``trainer.export.onnx_graph.ServedCoder``);
- padding: every segment padded to the max length (as the paper) vs length-sorted requests padded to a
  32-token bucket (``engine.pipeline.infer.base.plan_requests`` + ``schemas.text.pad_batch``, what the
  engine sends), with the share of computed tokens that are real;
- cost growth: time per note with max length 256 / 512 / 1,024 (paper: doubling the length roughly
  tripled the time), onnxruntime, fixed padding.
Both runtimes get the same number of intra-op threads (``--threads``, default 1: per-core figures).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from bench.artifacts import MODEL_NAME, Artifacts
from bench.common import BenchConfig, best_of, say

BATCH_SEGMENTS = 8  # segments per request (the engine's requests hold up to 32; 8 keeps the fixed-padding tensor small)


def mtsamples_sample(cfg: BenchConfig, n: int, seed: int = 0) -> list[str]:
    """A seeded random sample of deduplicated MTSamples transcriptions (their length distribution)."""
    from trainer.data.importers.mtsamples import mtsamples_texts

    return mtsamples_texts(cfg.data_dir / "mtsamples" / "mtsamples.csv", sample=n, seed=seed)


def plan_batches(segments: Sequence, pad_id: int, max_length: int, fixed: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    from engine.pipeline.infer.base import PAD_MULTIPLE, plan_requests
    from schemas.text import pad_batch

    if fixed:  # the paper: every input padded to the maximum length, in arrival order
        groups = [list(range(i, min(i + BATCH_SEGMENTS, len(segments)))) for i in range(0, len(segments), BATCH_SEGMENTS)]
        return [pad_batch([segments[j] for j in g], pad_id, multiple=max_length, max_length=max_length) for g in groups]
    return [pad_batch([segments[j] for j in g], pad_id, PAD_MULTIPLE, max_length) for g in plan_requests(segments, BATCH_SEGMENTS)]


def time_batches(infer: Callable[[np.ndarray, np.ndarray], object], batches: list[tuple[np.ndarray, np.ndarray]], repeats: int = 1) -> float:
    """Seconds for one pass over ``batches``: the best of ``repeats`` passes, after an untimed warm-up batch."""
    infer(*batches[0])  # warm-up (allocations, first-call graph work)

    def one_pass() -> None:
        for ids, mask in batches:
            infer(ids, mask)

    return best_of(one_pass, repeats)


def runners(cfg: BenchConfig, art: Artifacts) -> dict[str, Callable[[np.ndarray, np.ndarray], object]]:
    import torch

    from engine.infra.model import load_runtime
    from engine.pipeline.infer.local import LocalOnnxBackend
    from trainer.export.onnx_graph import ServedCoder
    from trainer.models import load_finetuned

    torch.set_num_threads(cfg.threads)
    runtime = load_runtime(art.speed_repository, MODEL_NAME)
    onnx = LocalOnnxBackend(runtime.onnx_path, intra_op_threads=cfg.threads)
    served = ServedCoder(load_finetuned(art.speed_run), runtime.metadata.evidence_top_k).eval()

    @torch.no_grad()
    def eager(ids: np.ndarray, mask: np.ndarray) -> object:
        return served(torch.from_numpy(ids), torch.from_numpy(mask))

    return {"onnxruntime": onnx.infer, "pytorch-eager": eager}


def measure(texts: list[str], tokenizer, pad_id: int, max_length: int, runner, fixed: bool, repeats: int = 1) -> dict[str, Any]:
    from schemas.model_repo import SegmentationParams
    from schemas.text import segment_notes

    segments = segment_notes(texts, tokenizer, SegmentationParams(max_length=max_length))
    batches = plan_batches(segments, pad_id, max_length, fixed)
    seconds = time_batches(runner, batches, repeats)
    real = sum(len(s) for s in segments)
    computed = sum(ids.size for ids, _ in batches)
    return {
        "notes": len(texts), "segments": len(segments), "seconds": round(seconds, 3),
        "notes_per_s": round(len(texts) / seconds, 3), "real_tokens_per_s": round(real / seconds, 1),
        "ms_per_note": round(1000 * seconds / len(texts), 2), "ms_per_segment": round(1000 * seconds / len(segments), 2),
        "real_token_share": round(real / computed, 4), "computed_tokens": int(computed), "real_tokens": int(real),
    }


def run(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    from engine.infra.model import load_runtime

    sizes = cfg.sizes
    runtime = load_runtime(art.speed_repository, MODEL_NAME)
    tokenizer, pad_id = runtime.tokenizer, runtime.pad_id
    texts = mtsamples_sample(cfg, sizes.speed_notes, cfg.seed)
    longest = max(sizes.speed_lengths)
    run_fns = runners(cfg, art)
    comparisons = []
    for name, fn in run_fns.items():
        for fixed in (True, False):
            padding = f"fixed to {longest}" if fixed else "bucketed (32), length-sorted"
            say(f"inference: {name}, padding {padding}, {len(texts)} notes ...")
            result = measure(texts, tokenizer, pad_id, longest, fn, fixed, sizes.speed_repeats)
            comparisons.append({"runtime": name, "padding": "fixed" if fixed else "bucketed", "max_length": longest, **result})
            say(f"  {result['notes_per_s']:.2f} notes/s, {result['real_tokens_per_s']:.0f} real tokens/s, real-token share {result['real_token_share']:.0%}")
    growth = []
    for length in sizes.speed_lengths:
        say(f"inference cost growth: onnxruntime, fixed padding to {length} ...")
        growth.append({"max_length": length, **measure(texts, tokenizer, pad_id, length, run_fns["onnxruntime"], True, sizes.speed_repeats)})
    for prev, cur in zip(growth, growth[1:]):
        cur["ms_per_segment_ratio_to_previous"] = round(cur["ms_per_segment"] / prev["ms_per_segment"], 2)
        cur["ms_per_note_ratio_to_previous"] = round(cur["ms_per_note"] / prev["ms_per_note"], 2)
    lengths = [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    return {
        "what": "same exported BERT-XML, same MTSamples notes: onnxruntime vs PyTorch eager, fixed vs bucketed padding; cost growth with max length",
        "model": {"encoder": sizes.speed_encoder, "codes": len(runtime.metadata.labels), "evidence_top_k": runtime.metadata.evidence_top_k,
                  "max_length": runtime.max_length, "repository": str(art.speed_repository)},
        "threads": cfg.threads, "batch_segments": BATCH_SEGMENTS, "timing": f"best of {sizes.speed_repeats} passes after a warm-up batch",
        "notes": {"n": len(texts), "word_pieces_p50": int(np.percentile(lengths, 50)), "word_pieces_p90": int(np.percentile(lengths, 90)),
                  "word_pieces_max": int(max(lengths))},
        "comparisons": comparisons, "cost_growth": growth,
    }
