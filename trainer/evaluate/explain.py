"""Explanations (paper 4.5): the XML attention a_ij of one code over a note's tokens, mapped back to the
note's characters through the tokenizer offsets and rendered as HTML (Figure 3); and the encoder's
last-layer self-attention heads on the segment that decided the code's score, as a PNG grid (Figure 4)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from schemas.cli import UserError  # noqa: E402
from schemas.text import PAD, Segment, load_tokenizer, pad_batch, segment_notes  # noqa: E402
from trainer.models.run_dir import FinetunedCoder  # noqa: E402


@dataclass
class CodeAttention:
    code: str
    description: str
    probability: float  # max over segments (paper 4.1)
    deciding_segment: int  # the segment whose score is the note's score
    segments: list[Segment]
    attention: np.ndarray  # [segments, tokens] a_ij of this code, 0 on padding
    char_weights: np.ndarray  # [len(text)] highest attention of any token covering the character


@torch.no_grad()
def code_attention(coder: FinetunedCoder, tokenizer: Tokenizer, text: str, code: str) -> CodeAttention:
    if coder.architecture != "bert-xml":
        raise UserError(f"per-code token attention exists only for bert-xml models, not {coder.architecture}")
    if code not in coder.labels.index:
        raise UserError(f"code {code!r} is not in the model's label space ({len(coder.labels)} codes, e.g. {list(coder.labels.codes[:5])})")
    if not text.strip():
        raise UserError("the note is empty")
    j = coder.labels.index[code]
    segments = segment_notes([text], tokenizer, coder.segmentation)
    ids, mask = pad_batch(segments, tokenizer.token_to_id(PAD), multiple=8)
    out = coder(torch.from_numpy(ids), torch.from_numpy(mask))
    logits = out.logits[:, j].float().numpy()
    attention = out.token_attention[:, j, :].float().numpy()
    char_weights = np.zeros(len(text), dtype=np.float32)
    for s, segment in enumerate(segments):
        for i, (start, end) in enumerate(segment.offsets):
            if end > start:
                char_weights[start:end] = np.maximum(char_weights[start:end], attention[s, i])
    deciding = int(np.argmax(logits))
    probability = float(1 / (1 + np.exp(-logits[deciding])))
    return CodeAttention(code, coder.labels.description(code), probability, deciding, segments, attention, char_weights)


def render_html(text: str, result: CodeAttention, top: int = 10) -> str:
    """The note with each character's background as strong as the attention on its token (Figure 3)."""
    peak = float(result.char_weights.max()) or 1.0
    level = np.round(result.char_weights / peak * 20).astype(int)  # 21 shades: keeps the HTML small
    pieces, start = [], 0
    for end in range(1, len(text) + 1):
        if end == len(text) or level[end] != level[start]:
            chunk = html.escape(text[start:end])
            if level[start]:
                alpha = level[start] / 20
                pieces.append(f'<span style="background: rgba(220, 40, 40, {alpha:.2f})" title="{result.char_weights[start]:.4f}">{chunk}</span>')
            else:
                pieces.append(chunk)
            start = end
    seg = result.segments[result.deciding_segment]
    weights = result.attention[result.deciding_segment, : len(seg)]
    best = np.argsort(-weights)[:top]
    rows = "".join(
        f"<tr><td>{html.escape(text[seg.offsets[i][0]:seg.offsets[i][1]] or '[special]')}</td><td>{weights[i]:.4f}</td></tr>" for i in best
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>BERT-XML attention</title></head>"
        "<body style='font-family: sans-serif; max-width: 60em'>"
        f"<h2>{html.escape(result.code)}: {html.escape(result.description)}</h2>"
        f"<p>probability {result.probability:.4f} (max over {len(result.segments)} segments; segment "
        f"{result.deciding_segment + 1} decides). Shading: the code's attention a<sub>ij</sub> (eq. 2) on each token, "
        f"relative to its highest value ({peak:.4f}).</p>"
        f"<table><tr><th>top tokens of the deciding segment</th><th>attention</th></tr>{rows}</table>"
        f"<pre style='white-space: pre-wrap; line-height: 1.5'>{''.join(pieces)}</pre></body></html>"
    )


@torch.no_grad()
def plot_last_layer_heads(coder: FinetunedCoder, tokenizer: Tokenizer, segment: Segment, path: Path, center: int | None = None, window: int = 40) -> Path:
    """Figure 4: each last-layer head's token-to-token attention over a window of the segment."""
    encoder = coder.model.encoder
    previous = encoder.config._attn_implementation
    encoder.set_attn_implementation("eager")  # fused kernels do not return attention probabilities
    try:
        ids = torch.tensor([segment.input_ids])
        heads = encoder(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True).attentions[-1][0].float().numpy()
    finally:
        encoder.set_attn_implementation(previous)
    n = len(segment)
    center = n // 2 if center is None else center
    lo = max(0, min(center - window // 2, n - window))
    hi = min(n, lo + window)
    tokens = [tokenizer.id_to_token(t) for t in segment.input_ids[lo:hi]]
    n_heads = heads.shape[0]
    cols = min(4, n_heads)
    rows = -(-n_heads // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * rows), squeeze=False)
    for h in range(rows * cols):
        ax = axes[h // cols][h % cols]
        if h >= n_heads:
            ax.axis("off")
            continue
        ax.imshow(heads[h, lo:hi, lo:hi], cmap="viridis", vmin=0)
        ax.set_title(f"layer {encoder.config.num_hidden_layers}, head {h + 1}", fontsize=9)
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=5)
        ax.set_yticks(range(len(tokens)), tokens, fontsize=5)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def explain_note(coder: FinetunedCoder, text: str, code: str, out_dir: Path, stem: str = "explain") -> tuple[CodeAttention, Path, Path]:
    """Write ``<stem>_<code>.html`` (Figure 3) and ``<stem>_<code>_heads.png`` (Figure 4)."""
    if coder.tokenizer_path is None:
        raise UserError("the model has no tokenizer.json beside it")
    tokenizer = load_tokenizer(coder.tokenizer_path)
    result = code_attention(coder, tokenizer, text, code)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    safe = code.replace(".", "_")
    html_path = out_dir / f"{stem}_{safe}.html"
    html_path.write_text(render_html(text, result), encoding="utf-8")
    segment = result.segments[result.deciding_segment]
    center = int(np.argmax(result.attention[result.deciding_segment, : len(segment)]))
    png_path = plot_last_layer_heads(coder, tokenizer, segment, out_dir / f"{stem}_{safe}_heads.png", center)
    return result, html_path, png_path
