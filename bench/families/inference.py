"""Inference speed of one exported BERT-XML on the same MTSamples notes, every runtime side by side in one run:

- runtimes (``bench.runtimes``): onnxruntime on the exported fused graph through the engine's embedded
  backend (the embedded default), the same with int8 weights (``trainer export --int8``) and on the unfused
  graph (``--no-fuse``); OpenVINO on the fused graph (fp32, and bf16 where the CPU has it); PyTorch eager on
  the same weights wrapped as exported. Passes are interleaved (runtime A, B, C, A, B, C, ...; best pass
  each), so background load falls on all of them alike;
- padding: length-sorted requests of the engine's size (``ICDCODER_TRITON_MAX_SEGMENTS_PER_REQUEST``'s
  default: one segment each), padded to a 32-token bucket (what the engine sends), for every runtime; every
  segment padded to the max length in batches of 8 (the paper) for the embedded default and PyTorch eager;
- goals at the longest max length (1,024 in full mode), bucketed: embedded fp32 >= 1.5x PyTorch eager
  notes/s; int8 >= 2x embedded fp32, with official MAP and micro-AUC on CodiEsp dev within 0.005 of fp32;
- cost growth: time per segment and per note at max length 256 / 512 / 1,024 (paper: doubling the length
  roughly tripled the time), embedded default, fixed padding.
All runtimes get the same intra-op threads (``--threads``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from bench.artifacts import MODEL_NAME, Artifacts
from bench.common import BenchConfig, Stopwatch, say

BATCH_SEGMENTS = 8  # segments per batch with fixed padding (the paper's way)
EMBEDDED, INT8, UNFUSED, EAGER = "onnxruntime fp32 (embedded default)", "onnxruntime int8", "onnxruntime fp32, unfused graph", "pytorch eager fp32"
GOAL_VS_EAGER, GOAL_INT8_SPEEDUP, GOAL_INT8_MAX_DELTA = 1.5, 2.0, 0.005


def mtsamples_sample(cfg: BenchConfig, n: int, seed: int = 0) -> list[str]:
    """A seeded random sample of deduplicated MTSamples transcriptions (their length distribution)."""
    from trainer.data.importers.mtsamples import mtsamples_texts

    return mtsamples_texts(cfg.data_dir / "mtsamples" / "mtsamples.csv", sample=n, seed=seed)


def request_segments() -> int:
    """Segments per request the engine sends by default."""
    from schemas.settings import TritonSettings

    return TritonSettings().max_segments_per_request


def plan_batches(segments: Sequence, pad_id: int, max_length: int, fixed: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    from engine.pipeline.infer.base import PAD_MULTIPLE, plan_requests
    from schemas.text import pad_batch

    if fixed:  # the paper: every input padded to the maximum length, in arrival order
        groups = [list(range(i, min(i + BATCH_SEGMENTS, len(segments)))) for i in range(0, len(segments), BATCH_SEGMENTS)]
        return [pad_batch([segments[j] for j in g], pad_id, multiple=max_length, max_length=max_length) for g in groups]
    return [pad_batch([segments[j] for j in g], pad_id, PAD_MULTIPLE, max_length) for g in plan_requests(segments, request_segments())]


def time_interleaved(backends: dict[str, Any], batches: list[tuple[np.ndarray, np.ndarray]], repeats: int) -> dict[str, float]:
    """Seconds of the best pass over ``batches`` per backend; passes interleaved across backends, after one
    untimed warm-up batch each (allocations, first-call graph work)."""
    for backend in backends.values():
        backend.infer(*batches[0])
    best = {name: float("inf") for name in backends}
    for _ in range(max(1, repeats)):
        for name, backend in backends.items():
            with Stopwatch() as sw:
                for ids, mask in batches:
                    backend.infer(ids, mask)
            best[name] = min(best[name], sw.seconds)
    return best


def pass_stats(n_notes: int, segments: Sequence, batches: list, seconds: float) -> dict[str, Any]:
    real = sum(len(s) for s in segments)
    computed = sum(ids.size for ids, _ in batches)
    return {
        "notes": n_notes, "segments": len(segments), "seconds": round(seconds, 3),
        "notes_per_s": round(n_notes / seconds, 3), "real_tokens_per_s": round(real / seconds, 1),
        "ms_per_note": round(1000 * seconds / n_notes, 2), "ms_per_segment": round(1000 * seconds / len(segments), 2),
        "real_token_share": round(real / computed, 4), "computed_tokens": int(computed), "real_tokens": int(real),
    }


def backends(cfg: BenchConfig, art: Artifacts, top_k: int) -> dict[str, Any]:
    from bench import runtimes

    fused = art.speed_repository / MODEL_NAME / "1" / "model.onnx"
    out = {EMBEDDED: runtimes.onnxruntime_backend(fused, cfg.threads),
           INT8: runtimes.onnxruntime_backend(art.export_variant("int8", int8=True) / MODEL_NAME / "1" / "model.onnx", cfg.threads),
           UNFUSED: runtimes.onnxruntime_backend(art.export_variant("unfused", fuse=False) / MODEL_NAME / "1" / "model.onnx", cfg.threads)}
    for precision in runtimes.openvino_precisions():
        out[f"openvino {precision.replace('f32', 'fp32')}"] = runtimes.OpenVinoBackend(fused, cfg.threads, precision)
    out[EAGER] = runtimes.TorchEagerBackend(art.speed_run, top_k, cfg.threads)
    return out


def dev_accuracy(art: Artifacts, runtime, backend) -> dict[str, Any]:
    """Micro-AUC (label space) and CodiEsp's official MAP (all gold codes) of one backend on the evaluation split."""
    from engine.pipeline.infer.base import run_segments
    from schemas.text import max_over_segments, segment_notes
    from trainer.data.dataset import load_split
    from trainer.evaluate.metrics import micro_auc
    from trainer.evaluate.ranking import official_map
    from trainer.finetune.data import label_matrix

    notes = load_split(art.dataset, art.eval_split)
    labels = runtime.metadata.labels
    segments = segment_notes([n.text for n in notes], runtime.tokenizer, runtime.metadata.segmentation)
    result = run_segments(backend, segments, runtime.pad_id, runtime.max_length)
    scores = max_over_segments(result.probs.astype(np.float64), [s.note_index for s in segments], len(notes))
    targets, _ = label_matrix(notes, labels)
    return {"split": art.eval_split, "notes": len(notes), "micro_auc": micro_auc(targets, scores),
            "official_map": official_map([n.codes for n in notes], list(labels.codes), scores).value}


def accuracy_changes(art: Artifacts, runtime, chosen: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"runtime": name, **dev_accuracy(art, runtime, backend)} for name, backend in chosen.items()]
    base = rows[0]
    for row in rows[1:]:
        for metric in ("micro_auc", "official_map"):
            if row[metric] is not None and base[metric] is not None:
                row[f"delta_{metric}"] = round(row[metric] - base[metric], 4)
    return rows


def goals(comparisons: list[dict[str, Any]], accuracy: list[dict[str, Any]], longest: int, trained: bool = True) -> dict[str, Any]:
    """The issue-18 goals; the int8 accuracy goal is judged on a trained model only (None: not measured)."""
    rate = {c["runtime"]: c["notes_per_s"] for c in comparisons if c["padding"] == "bucketed" and c["max_length"] == longest}
    int8 = next((a for a in accuracy if a["runtime"] == INT8), {})
    deltas = [abs(int8[k]) for k in ("delta_official_map", "delta_micro_auc") if int8.get(k) is not None]
    return {
        "embedded_vs_eager": {"ratio": round(rate[EMBEDDED] / rate[EAGER], 3), "goal": GOAL_VS_EAGER, "met": rate[EMBEDDED] / rate[EAGER] >= GOAL_VS_EAGER},
        "int8_vs_embedded": {"ratio": round(rate[INT8] / rate[EMBEDDED], 3), "goal": GOAL_INT8_SPEEDUP, "met": rate[INT8] / rate[EMBEDDED] >= GOAL_INT8_SPEEDUP},
        "int8_accuracy": {"max_abs_delta": max(deltas) if deltas else None, "goal": GOAL_INT8_MAX_DELTA,
                          "met": (bool(deltas) and len(deltas) == 2 and max(deltas) <= GOAL_INT8_MAX_DELTA) if trained else None},
        "fastest_fp32_runtime": max((n for n in rate if "fp32" in n), key=rate.get),
        "fastest_runtime": max(rate, key=rate.get),
    }


def run(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    from engine.infra.model import load_runtime
    from schemas.model_repo import SegmentationParams
    from schemas.text import segment_notes
    from trainer.export.optimize import op_counts

    sizes = cfg.sizes
    runtime = load_runtime(art.speed_repository, MODEL_NAME)
    tokenizer, pad_id = runtime.tokenizer, runtime.pad_id
    texts = mtsamples_sample(cfg, sizes.speed_notes, cfg.seed)
    longest = max(sizes.speed_lengths)
    chosen = backends(cfg, art, runtime.metadata.evidence_top_k)
    segments = segment_notes(texts, tokenizer, SegmentationParams(max_length=longest))
    comparisons = []
    for fixed in (False, True):
        batches = plan_batches(segments, pad_id, longest, fixed)
        timed = chosen if not fixed else {n: chosen[n] for n in (EMBEDDED, EAGER)}
        say(f"inference: {', '.join(timed)}; padding {'fixed to ' + str(longest) if fixed else 'bucketed (32), length-sorted'}; "
            f"{len(texts)} notes, best of {sizes.speed_repeats} interleaved passes ...")
        for name, seconds in time_interleaved(timed, batches, sizes.speed_repeats).items():
            stats = pass_stats(len(texts), segments, batches, seconds)
            comparisons.append({"runtime": name, "padding": "fixed" if fixed else "bucketed", "max_length": longest, **stats})
            say(f"  {name}: {stats['notes_per_s']:.2f} notes/s, {stats['real_tokens_per_s']:.0f} real tokens/s")
    say(f"inference accuracy on CodiEsp {art.eval_split}: fp32 vs int8 and OpenVINO ...")
    accuracy = accuracy_changes(art, runtime, {n: b for n, b in chosen.items() if n != EAGER and n != UNFUSED})
    growth = []
    for length in sizes.speed_lengths:
        say(f"inference cost growth: embedded default, fixed padding to {length} ...")
        segs = segment_notes(texts, tokenizer, SegmentationParams(max_length=length))
        batches = plan_batches(segs, pad_id, length, fixed=True)
        seconds = time_interleaved({EMBEDDED: chosen[EMBEDDED]}, batches, sizes.speed_repeats)[EMBEDDED]
        growth.append({"max_length": length, **pass_stats(len(texts), segs, batches, seconds)})
    for prev, cur in zip(growth, growth[1:]):
        cur["ms_per_segment_ratio_to_previous"] = round(cur["ms_per_segment"] / prev["ms_per_segment"], 2)
        cur["ms_per_note_ratio_to_previous"] = round(cur["ms_per_note"] / prev["ms_per_note"], 2)
    lengths = [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    fused = op_counts(art.speed_repository / MODEL_NAME / "1" / "model.onnx")
    return {
        "what": "same exported BERT-XML, same MTSamples notes: onnxruntime (fused fp32 = embedded default, int8, unfused), OpenVINO and "
                "PyTorch eager side by side (interleaved passes); fixed vs bucketed padding; int8 accuracy on CodiEsp; cost growth with max length",
        "model": {"encoder": sizes.speed_encoder, "codes": len(runtime.metadata.labels), "evidence_top_k": runtime.metadata.evidence_top_k,
                  "max_length": runtime.max_length, "repository": str(art.speed_repository), "fused_operators": {k: v for k, v in fused.items() if v},
                  "trained": not cfg.quick},
        "threads": cfg.threads, "batch_segments": BATCH_SEGMENTS, "request_segments": request_segments(), "timing": f"best of {sizes.speed_repeats} interleaved passes after a warm-up batch",
        "notes": {"n": len(texts), "word_pieces_p50": int(np.percentile(lengths, 50)), "word_pieces_p90": int(np.percentile(lengths, 90)),
                  "word_pieces_max": int(max(lengths))},
        "comparisons": comparisons, "accuracy": accuracy, "goals": goals(comparisons, accuracy, longest, trained=not cfg.quick), "cost_growth": growth,
    }
