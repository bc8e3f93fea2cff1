"""Progress bar for training (rank 0 only): loss, gradient norm, real tokens/s, learning rate; tqdm gives
the ETA."""

from __future__ import annotations

import time

from tqdm.auto import tqdm


class Progress:
    def __init__(self, total_steps: int, initial_step: int = 0, enabled: bool = True, desc: str = "train"):
        self.bar = tqdm(total=total_steps, initial=initial_step, desc=desc, unit="step", disable=not enabled, dynamic_ncols=True)
        self.start = time.perf_counter()
        self.tokens = 0

    def update(self, loss: float, tokens: int, lr: float, grad_norm: float) -> None:
        """One optimizer step done: ``grad_norm`` is the norm before clipping."""
        self.tokens += tokens
        rate = self.tokens / max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix(loss=f"{loss:.4f}", grad_norm=f"{grad_norm:.3g}", tok_s=f"{rate:,.0f}", lr=f"{lr:.2e}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
