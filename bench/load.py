"""The load a benchmark family ran under, and a warning when it makes the family's timings meaningless.

A background thread samples, once a second while the family runs, the tasks that are runnable on the whole
machine (``/proc/loadavg``: 'running/total') and those of this process tree (this process, its threads and
its children: servers and commands a family starts, a competitor the shared-machine family starts on
purpose). The difference is what *other* processes kept busy. When on average they kept more cores busy
than the family left free (cores - its threads), the family's threads did not all have a core: the absolute
figures are disturbed. Ratios measured side by side in the same run still compare, and the summary says so.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from schemas.threads import runnable_elsewhere, usable_cores

SLACK = 0.25  # cores of background work tolerated (shell, editors, kernel threads)


class LoadMonitor:
    """``with LoadMonitor(threads) as load: ...`` then ``load.result()`` (a dict for the family's JSON)."""

    def __init__(self, threads: int, interval_s: float = 1.0) -> None:
        self.threads, self.interval_s = threads, interval_s
        self.cores = usable_cores()
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="load-monitor", daemon=True)
        self.load_start = self.load_end = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            value = runnable_elsewhere(count_background=True)  # a niced job still disturbs a timing a little
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> "LoadMonitor":
        self.load_start = _loadavg()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.load_end = _loadavg()

    def result(self) -> dict[str, Any]:
        busy = float(np.mean(self.samples)) if self.samples else None
        out = {"cores": self.cores, "threads": self.threads, "samples": len(self.samples),
               "busy_elsewhere_mean": round(busy, 2) if busy is not None else None,
               "busy_elsewhere_p90": round(float(np.percentile(self.samples, 90)), 2) if self.samples else None,
               "load_average_start": self.load_start, "load_average_end": self.load_end}
        out["warning"] = load_warning(busy, self.cores, self.threads)
        return out


def load_warning(busy: float | None, cores: int, threads: int) -> str | None:
    """The warning for a family whose threads could not all have a core, or None."""
    free = max(0, cores - threads)
    if busy is None or busy <= free + SLACK:
        return None
    return (f"other processes kept {busy:.1f} of {cores} cores busy on average while this family ran {threads} thread(s): "
            f"its absolute timings are disturbed (ratios measured side by side in this run still compare)")


def _loadavg() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
