"""Peak memory of the BERT-XML output layer (eqs. 2-4): analytic estimate and a CPU measurement.

``python -m trainer.models.xml_memory --codes 2292 --tokens 1024 --batch 8 --hidden 768 --chunk 512``
measures the head alone (the encoder is the same for every output layer) in a fresh process each, as the
growth of peak RSS over the inputs, for inference and for a training step (forward + backward).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass

MB = 2**20


@dataclass(frozen=True)
class XmlMemoryEstimate:
    attention_full_mb: float  # one [B, C, T] fp32 tensor: what an unchunked head holds (and what evidence returns)
    inference_peak_mb: float  # chunked inference: scores + attention of one chunk, contexts of one chunk, logits
    training_saved_mb: float  # tensors autograd keeps until backward (checkpointed: only inputs per chunk + logits)
    training_saved_unchunked_mb: float  # the same without chunk checkpointing


def estimate(codes: int, tokens: int, batch: int, hidden: int, chunk: int, bytes_per: int = 4) -> XmlMemoryEstimate:
    c = min(chunk, codes)
    bct = batch * c * tokens * bytes_per  # scores / attention of one chunk
    bch = batch * c * hidden * bytes_per  # contexts / W_b outputs of one chunk
    full_bct = batch * codes * tokens * bytes_per
    full_bch = batch * codes * hidden * bytes_per
    logits = batch * codes * bytes_per
    # inference: masked scores and softmax output alive together, then context, W_b out and its ReLU
    inference = 2 * bct + 3 * bch + logits
    # unchunked training keeps attention (softmax backward), context, W_b output and ReLU output per code
    unchunked = full_bct + 3 * full_bch + logits
    # checkpointed chunks keep nothing but their outputs; the backward recomputes one chunk at a time
    checkpointed = logits + 2 * bct + 3 * bch
    return XmlMemoryEstimate(full_bct / MB, inference / MB, checkpointed / MB, unchunked / MB)


def _measure(codes: int, tokens: int, batch: int, hidden: int, chunk: int, train: bool) -> float:
    import torch

    from trainer.models.bert_xml import MultiLabelAttention

    torch.set_num_threads(1)
    head = MultiLabelAttention(codes, hidden, hidden, chunk, checkpoint_chunks=True).train(train)
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
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(_measure(a.codes, a.tokens, a.batch, a.hidden, a.chunk[0], a.train))
        return 0
    for chunk in a.chunk:
        cmd = [sys.executable, "-m", "trainer.models.xml_memory", "--child", "--codes", str(a.codes), "--tokens", str(a.tokens), "--batch", str(a.batch), "--hidden", str(a.hidden), "--chunk", str(chunk)] + (["--train"] if a.train else [])
        measured = float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip())
        print(json.dumps({"chunk": chunk, "train": a.train, "measured_peak_growth_mb": round(measured, 1), **{k: round(v, 1) for k, v in asdict(estimate(a.codes, a.tokens, a.batch, a.hidden, chunk)).items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
