"""Training curves (loss, dev metric, gradient norm) as PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def plot_loss_curve(history: Sequence[tuple[int, float]], path: Path, title: str = "training loss", ylabel: str = "loss") -> Path:
    """Plot (step, value) points: a loss, a dev metric, a gradient norm."""
    import matplotlib  # imported here: the training pieces stay importable without it (the GPU check)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if history:
        steps, values = zip(*history)
        ax.plot(steps, values, marker="." if len(history) < 50 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
