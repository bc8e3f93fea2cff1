"""Loss curves as PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_loss_curve(
    history: Sequence[tuple[int, float]], path: Path, title: str = "training loss",
    extra: dict[str, Sequence[tuple[int, float]]] | None = None, ylabel: str = "loss",
) -> Path:
    """Plot (step, loss) points; ``extra`` adds named series (e.g. dev loss) on the same axes."""
    fig, ax = plt.subplots(figsize=(7, 4))
    series = {"train": history, **(extra or {})}
    for name, points in series.items():
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="." if len(points) < 50 else None, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
