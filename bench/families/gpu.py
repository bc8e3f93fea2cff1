"""The GPU check: one prepared command for the day a GPU is lent (``python -m bench run --only gpu``; what to
run there: bench/README.md, "The day a GPU is lent"). It needs only PyTorch, transformers and onnxruntime
(plus the pure-Python packages our modules import, carried as wheels) and no data: inputs are random token
ids, weights are the project's encoders at random initialisation (speed and numerical parity, not quality).

On a CUDA GPU (``GPU_FULL``, sized for <= 8 minutes on an H100/H200; a time guard skips what would not fit):
- training tokens/s and MFU of the ``big`` encoder (BERT-base, paper Table 1) for MLM pretraining and
  BERT-XML fine-tuning (478 codes), at 512 and 1,024 tokens, fp32 / bf16 / fp16, attention SDPA (PyTorch's
  flash / memory-efficient kernels) and eager; the project's own training pieces (``MixedPrecision``,
  ``build_optimizer``, ``transformer_flops_per_token``, ``gpu_peak_flops``): same step as ``trainer``;
- the cost ratio 1,024 / 512 per sequence (paper: ~3x; goal <= 2.2x with flash attention, bf16 fine-tuning);
- inference sequences/s at 512 and 1,024: PyTorch, and the exported graph (``trainer.export``, fused) on
  onnxruntime's CUDA and TensorRT execution providers where this onnxruntime has them;
- fp16 vs fp32 probabilities and evidence positions of the same model (PyTorch; onnxruntime where it has a
  GPU provider).
On a CPU (``GPU_CPU_REDUCED``, seconds): the same code on the ``tiny`` encoder, short inputs, fp32/bf16, the
CPU execution provider; the test suite runs it, so the check cannot rot before a GPU shows up.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.artifacts import Artifacts
from bench.common import BenchConfig, say

VOCAB_SIZE = 20_000  # trainer.vocab.DEFAULT_VOCAB_SIZE (paper 3.2), without importing the vocabulary trainer
N_CODES = 478  # CodiEsp's label space in the benchmarks
GOAL_MAX_COST_RATIO = 2.2


@dataclass(frozen=True)
class GpuSizes:
    encoder: str
    lengths: tuple[int, int]
    batch: int  # sequences per training step and per inference call
    warmup: int
    steps: int
    precisions: tuple[str, ...]
    parity_precision: str  # compared with fp32
    budget_s: float  # stop starting new measurements after this


GPU_FULL = GpuSizes("big", (512, 1024), batch=16, warmup=3, steps=8, precisions=("bf16", "fp16", "fp32"), parity_precision="fp16", budget_s=420)
GPU_CPU_REDUCED = GpuSizes("tiny", (32, 64), batch=2, warmup=1, steps=2, precisions=("bf16", "fp32"), parity_precision="bf16", budget_s=120)


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> bool:
        return time.monotonic() < self.deadline


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(task: str, sizes: GpuSizes, attention: str, device):
    """``pretrain``: BertForMaskedLM; ``finetune``: BERT-XML with ``N_CODES`` codes; both of the preset's size."""
    from transformers import BertForMaskedLM, BertModel

    from trainer.encoder.config import PRESETS
    from trainer.models.bert_xml import BertXML

    config = PRESETS[sizes.encoder].to_bert_config(VOCAB_SIZE)
    config.max_position_embeddings = max(config.max_position_embeddings, max(sizes.lengths))
    if task == "pretrain":
        model = BertForMaskedLM._from_config(config, attn_implementation=attention)
    else:
        model = BertXML(BertModel._from_config(config, attn_implementation=attention, add_pooling_layer=False), N_CODES)
    return model.to(device), config


def _batch(task: str, batch: int, length: int, device, generator):
    import torch

    ids = torch.randint(10, VOCAB_SIZE, (batch, length), generator=generator)
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if task == "pretrain":
        labels = torch.full_like(ids, -100)
        masked = torch.rand(ids.shape, generator=generator) < 0.15
        out["labels"] = torch.where(masked, ids, labels)
    else:
        out["targets"] = (torch.rand(batch, N_CODES, generator=generator) < 0.01).float()
    return {k: v.to(device) for k, v in out.items()}


def _loss(task: str, model, batch):
    import torch

    if task == "pretrain":
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    logits = model(batch["input_ids"], batch["attention_mask"]).logits
    return torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), batch["targets"])


def train_speed(task: str, length: int, precision: str, attention: str, sizes: GpuSizes, device) -> dict[str, Any]:
    """Tokens/s and MFU of optimizer steps (forward, backward, clip, AdamW) after warm-up steps."""
    import torch

    from trainer.training.config import OptimConfig
    from trainer.training.optim import build_optimizer
    from trainer.training.precision import MixedPrecision
    from trainer.training.summary import gpu_peak_flops, transformer_flops_per_token

    model, config = build_model(task, sizes, attention, device)
    if task == "finetune":
        model.return_attention = False  # training does not keep the [B, codes, T] attention
    model.train()
    optimizer = build_optimizer(model, OptimConfig(precision=precision))
    mp = MixedPrecision(precision, device)
    generator = torch.Generator().manual_seed(0)
    batches = [_batch(task, sizes.batch, length, device, generator) for _ in range(2)]
    elapsed = 0.0
    for step in range(sizes.warmup + sizes.steps):
        if step == sizes.warmup:
            _sync(device)
            started = time.perf_counter()
        with mp.autocast():
            loss = _loss(task, model, batches[step % 2])
        mp.backward(loss)
        mp.step(model, optimizer)
    _sync(device)
    elapsed = time.perf_counter() - started
    tokens = sizes.batch * length * sizes.steps
    n_params = sum(p.numel() for p in model.parameters())
    flops = transformer_flops_per_token(n_params, config.num_hidden_layers, config.hidden_size, length)
    if task == "finetune":
        flops += 12 * N_CODES * config.hidden_size  # label attention and context (eqs. 2-3), forward + backward
    peak = gpu_peak_flops(device)
    result = {"task": task, "length": length, "precision": precision, "attention": attention, "tokens_per_s": round(tokens / elapsed, 1),
              "ms_per_step": round(1000 * elapsed / sizes.steps, 2), "ms_per_sequence": round(1000 * elapsed / (sizes.steps * sizes.batch), 3),
              "mfu": round(flops * tokens / elapsed / peak, 4) if peak else None, "loss": round(float(loss), 4)}
    if device.type == "cuda":
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        torch.cuda.reset_peak_memory_stats(device)
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def _served(sizes: GpuSizes, device):
    from trainer.export.onnx_graph import ServedCoder

    model, _ = build_model("finetune", sizes, "sdpa", device)
    return ServedCoder(model, top_k=8).eval()


def parity(sizes: GpuSizes, device) -> dict[str, Any]:
    """Probabilities and evidence of the same BERT-XML in fp32 and in ``parity_precision`` (weights cast)."""
    import torch

    from trainer.export.onnx_graph import compare

    served = _served(sizes, device)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(10, VOCAB_SIZE, (sizes.batch, max(sizes.lengths)), generator=generator)
    mask = torch.ones_like(ids)
    mask[1:, max(sizes.lengths) // 2:] = 0  # real padding: the masked path must agree too
    ids, mask = ids.masked_fill(mask == 0, 0).to(device), mask.to(device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[sizes.parity_precision]
    with torch.no_grad():
        reference = [t.float().cpu().numpy() for t in served(ids, mask)]
        served.to(dtype)
        low = [t.float().cpu().numpy() for t in served(ids, mask)]
    result = compare(reference, low, tie_gap=5e-2)
    return {"precision": sizes.parity_precision, "runtime": "pytorch", "max_abs_probs": result.max_abs_probs,
            "max_abs_weights": result.max_abs_weights, "positions_agree": result.positions_agree}


def export_graphs(sizes: GpuSizes, device, work: Path) -> dict[str, Path]:
    """The BERT-XML exported as ``trainer export`` does: fused fp32 (CPU profile), fused fp16 (GPU profile)."""
    import torch

    from trainer.export.onnx_graph import convert_fp16, example_batch, export_onnx
    from trainer.export.optimize import fuse_encoder

    served = _served(sizes, torch.device("cpu"))
    config = served.coder.encoder.config
    work.mkdir(parents=True, exist_ok=True)
    paths = {"fp32": work / "model.onnx", "fp16": work / "model-fp16.onnx"}
    export_onnx(served, paths["fp32"], example_batch(VOCAB_SIZE, 10, (37, 24, 9)), N_CODES)
    shape = (config.num_attention_heads, config.hidden_size, config.num_hidden_layers)
    fuse_encoder(paths["fp32"], paths["fp16"], *shape, full=True)
    convert_fp16(paths["fp16"], paths["fp16"])
    fuse_encoder(paths["fp32"], paths["fp32"], *shape)
    return paths


def _time_calls(call: Callable[[], object], sizes: GpuSizes, sync: Callable[[], None]) -> float:
    for _ in range(sizes.warmup):
        call()
    sync()
    started = time.perf_counter()
    for _ in range(sizes.steps):
        call()
    sync()
    return (time.perf_counter() - started) / sizes.steps


def torch_inference(sizes: GpuSizes, device, budget: Budget) -> list[dict[str, Any]]:
    """Sequences/s of the served BERT-XML in PyTorch, each precision (weights cast), each length."""
    import torch

    rows = []
    served = _served(sizes, device)
    generator = torch.Generator().manual_seed(2)
    for length in sizes.lengths:
        ids = torch.randint(10, VOCAB_SIZE, (sizes.batch, length), generator=generator).to(device)
        mask = torch.ones_like(ids)
        for precision in sizes.precisions:
            row = {"runtime": "pytorch", "precision": precision, "length": length}
            if not budget.left():
                rows.append({**row, "skipped": "time budget"})
                continue
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
            with torch.no_grad():
                model = served.to(dtype)
                seconds = _time_calls(lambda: model(ids, mask), sizes, lambda: _sync(device))
            rows.append({**row, "sequences_per_s": round(sizes.batch / seconds, 1)})
    return rows


def onnxruntime_inference(sizes: GpuSizes, graphs: dict[str, Path], providers: list[str], budget: Budget) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Sequences/s of the exported graphs on each provider, and fp16-vs-fp32 parity on the GPU ones."""
    import onnxruntime as ort

    from schemas.model_repo import ATTENTION_MASK, INPUT_IDS
    from trainer.export.onnx_graph import compare

    rows, parity_rows = [], []
    rng = np.random.default_rng(3)
    for provider in providers:
        name = f"onnxruntime {provider.replace('ExecutionProvider', '')}"
        options = {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                   "trt_engine_cache_path": str(graphs["fp32"].parent / "trt-cache")} if provider == "TensorrtExecutionProvider" else {}
        outputs: dict[str, list] = {}
        for precision, path in graphs.items():
            if provider == "CPUExecutionProvider" and precision == "fp16":
                continue  # few fp16 kernels on CPU: not a CPU configuration
            try:
                session = ort.InferenceSession(str(path), providers=[(provider, options), "CPUExecutionProvider"])
            except Exception as err:  # noqa: BLE001 - a provider that cannot load this graph is a result
                rows.append({"runtime": name, "precision": precision, "length": None, "error": f"{type(err).__name__}: {str(err)[:200]}"})
                continue
            for length in sizes.lengths:
                row = {"runtime": name, "precision": precision, "length": length}
                if not budget.left():
                    rows.append({**row, "skipped": "time budget"})
                    continue
                ids = rng.integers(10, VOCAB_SIZE, (sizes.batch, length)).astype(np.int64)
                feeds = {INPUT_IDS: ids, ATTENTION_MASK: np.ones_like(ids)}
                seconds = _time_calls(lambda: session.run(None, feeds), sizes, lambda: None)
                rows.append({**row, "sequences_per_s": round(sizes.batch / seconds, 1)})
            probe = {INPUT_IDS: np.random.default_rng(4).integers(10, VOCAB_SIZE, (2, min(sizes.lengths))).astype(np.int64)}
            probe[ATTENTION_MASK] = np.ones_like(probe[INPUT_IDS])
            outputs[precision] = session.run(None, probe)
        if "fp16" in outputs and "fp32" in outputs:
            p = compare(outputs["fp32"], outputs["fp16"], tie_gap=5e-2)
            parity_rows.append({"precision": "fp16", "runtime": name, "max_abs_probs": p.max_abs_probs, "max_abs_weights": p.max_abs_weights,
                                "positions_agree": p.positions_agree})
    return rows, parity_rows


def run(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    sizes = GPU_FULL if cuda else GPU_CPU_REDUCED
    budget = Budget(sizes.budget_s)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 rows are true fp32 (TF32 would be a fourth precision)
    say(f"gpu check on {torch.cuda.get_device_name(0) if cuda else 'CPU (reduced: the GPU check rehearsed)'}: `{sizes.encoder}` encoder, "
        f"lengths {sizes.lengths}, batch {sizes.batch}, budget {sizes.budget_s:.0f} s")
    plan = [(task, length, precision, "sdpa") for precision in sizes.precisions for task in ("finetune", "pretrain") for length in sizes.lengths]
    training = []
    for task, length, precision, attention in plan:
        training.append(_guarded(budget, {"task": task, "length": length, "precision": precision, "attention": attention},
                                 lambda: train_speed(task, length, precision, attention, sizes, device)))
    say("gpu check: fp32 vs reduced-precision parity, inference ...")
    parity_rows = [_guarded(budget, {"precision": sizes.parity_precision}, lambda: parity(sizes, device))]
    inference = torch_inference(sizes, device, budget)
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") if p in available] if cuda else ["CPUExecutionProvider"]
    if providers and budget.left():
        say(f"gpu check: export (trainer.export, fused) and onnxruntime on {', '.join(providers)} ...")
        graphs = export_graphs(sizes, device, art.root / "gpu-check")
        ort_rows, ort_parity = onnxruntime_inference(sizes, graphs, providers, budget)
        inference += ort_rows
        parity_rows += ort_parity
    elif not providers:
        inference.append({"runtime": "onnxruntime", "precision": "-", "length": None,
                          "error": f"no GPU execution provider in this onnxruntime ({', '.join(available)}): install onnxruntime-gpu to measure it"})
    for precision in sizes.precisions:  # attention off (eager) last: the least important if time runs out
        for length in sizes.lengths:
            training.append(_guarded(budget, {"task": "finetune", "length": length, "precision": precision, "attention": "eager"},
                                     lambda: train_speed("finetune", length, precision, "eager", sizes, device)))
    return {
        "what": "GPU check: training tokens/s and MFU (pretraining, BERT-XML fine-tuning) by precision and attention, the 1,024/512 cost ratio, "
                "inference sequences/s (PyTorch, onnxruntime GPU providers), fp16-vs-fp32 parity; random weights and token ids",
        "device": torch.cuda.get_device_name(0) if cuda else "cpu (reduced rehearsal)", "cuda": cuda, "sizes": asdict(sizes),
        "torch": torch.__version__, "onnxruntime_providers": ort.get_available_providers(),
        "training": training, "cost_ratio": cost_ratios(training, sizes), "parity": parity_rows, "inference": inference,
    }


def _guarded(budget: Budget, key: dict[str, Any], measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    if not budget.left():
        return {**key, "skipped": "time budget"}
    say(f"  {key} ...")
    try:
        return measure()
    except Exception as err:  # noqa: BLE001 - e.g. out of memory in one configuration: recorded, the rest still run
        return {**key, "error": f"{type(err).__name__}: {str(err)[:200]}"}


def cost_ratios(training: list[dict[str, Any]], sizes: GpuSizes) -> list[dict[str, Any]]:
    short, long = sizes.lengths
    out = []
    for row in training:
        if row.get("length") != long or "ms_per_sequence" not in row:
            continue
        base = next((r for r in training if r.get("length") == short and "ms_per_sequence" in r
                     and all(r[k] == row[k] for k in ("task", "precision", "attention"))), None)
        if base:
            ratio = row["ms_per_sequence"] / base["ms_per_sequence"]
            goal = row["task"] == "finetune" and row["attention"] == "sdpa" and row["precision"] in ("bf16", "fp16")
            out.append({"task": row["task"], "precision": row["precision"], "attention": row["attention"], "ratio": round(ratio, 2),
                        **({"goal": GOAL_MAX_COST_RATIO, "met": ratio <= GOAL_MAX_COST_RATIO} if goal else {})})
    return out
