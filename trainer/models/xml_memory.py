"""Peak memory of the BERT-XML output layer (eqs. 2-4): analytic estimate and a CPU measurement.

``python -m trainer.models.xml_memory --codes 2292 --tokens 1024 --batch 8 --hidden 768 --chunk 512``
measures the head alone (the encoder is the same for every output layer) in a fresh process each, as the
growth of peak RSS over the inputs, for inference and for a training step (forward + backward).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass

MB = 2**20


@dataclass(frozen=True)
class XmlMemoryEstimate:
    attention_all_codes_mb: float  # one [B, C, T] tensor: what returning token_attention (evidence) costs
    inference_peak_mb: float  # one chunk at a time: max(scores + softmax, attention + context + W_b + ReLU)
    training_saved_unchunked_mb: float  # what autograd keeps for backward without chunk checkpointing
    training_peak_checkpointed_mb: float  # checkpointed: one chunk's activations and their gradients


def estimate(codes: int, tokens: int, batch: int, hidden: int, chunk: int, bytes_per: int = 4) -> XmlMemoryEstimate:
    """Analytic sizes of the head's own tensors (fp32 by default); the encoder's are not included."""
    c = min(chunk, codes)
    bct, bch = batch * c * tokens * bytes_per, batch * c * hidden * bytes_per  # one chunk's [B,c,T] / [B,c,H]
    chunk_live = max(2 * bct, bct + 3 * bch)  # masked scores + softmax output, then attention + 3 [B,c,H]
    saved = batch * codes * (tokens + 3 * hidden) * bytes_per  # attention, context, W_b output, ReLU output
    logits = batch * codes * bytes_per
    return XmlMemoryEstimate(
        attention_all_codes_mb=batch * codes * tokens * bytes_per / MB,
        inference_peak_mb=(chunk_live + logits) / MB,
        training_saved_unchunked_mb=(saved + logits) / MB,
        training_peak_checkpointed_mb=(2 * (bct + 3 * bch) + 2 * logits) / MB,
    )


def _measure(codes: int, tokens: int, batch: int, hidden: int, chunk: int, train: bool, checkpointed: bool) -> float:
    import torch

    from trainer.models.bert_xml import MultiLabelAttention

    torch.set_num_threads(1)
    head = MultiLabelAttention(codes, hidden, hidden, chunk, checkpoint_chunks=checkpointed).train(train)
    states = torch.randn(batch, tokens, hidden, requires_grad=train)
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[:, tokens * 3 // 4 :] = 0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if train:
        out = head(states, mask, return_attention=False)
        out.logits.sum().backward()
    else:
        with torch.no_grad():
            head(states, mask, return_attention=False)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # KiB -> MiB (Linux)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codes", type=int, default=2292)
    p.add_argument("--tokens", type=int, default=1024)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--chunk", type=int, nargs="+", default=[2292, 512, 128])
    p.add_argument("--train", action="store_true", help="measure a training step (forward + backward)")
    p.add_argument("--no-checkpoint", action="store_true", help="training without chunk checkpointing")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(_measure(a.codes, a.tokens, a.batch, a.hidden, a.chunk[0], a.train, not a.no_checkpoint))
        return 0
    for chunk in a.chunk:
        cmd = [sys.executable, "-m", "trainer.models.xml_memory", "--child", "--codes", str(a.codes), "--tokens", str(a.tokens), "--batch", str(a.batch), "--hidden", str(a.hidden), "--chunk", str(chunk)] + (["--train"] if a.train else []) + (["--no-checkpoint"] if a.no_checkpoint else [])
        # a fixed mmap threshold: glibc then maps every large tensor and unmaps it when freed, so peak RSS
        # follows live memory instead of heap fragmentation
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
        measured = float(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip())
        print(json.dumps({"chunk": chunk, "train": a.train, "checkpointed": a.train and not a.no_checkpoint, "measured_peak_growth_mb": round(measured, 1), **{k: round(v, 1) for k, v in asdict(estimate(a.codes, a.tokens, a.batch, a.hidden, chunk)).items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
