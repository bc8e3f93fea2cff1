"""Import Presidio without torch. ``presidio_analyzer`` imports spaCy, whose ``thinc`` imports torch if it is
installed (for GPU models we never use), and Presidio's device detection would import it too: seconds of
start-up and, worse, torch inside the engine. Where torch is not loaded yet, hide it for the duration of
this import; a process that imports torch afterwards (the trainer) gets it as usual."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PRESIDIO_DEVICE", "cpu")  # skip Presidio's torch-based device detection

# transformers too: Presidio imports it when present, and it would import torch (or, with torch hidden,
# remember for the rest of the process that torch is missing).
_HIDDEN = [m for m in ("torch", "transformers") if m not in sys.modules]
if "presidio_analyzer" not in sys.modules and _HIDDEN:
    for _m in _HIDDEN:
        sys.modules[_m] = None  # type: ignore[assignment]  # "import torch" now raises ImportError
    try:
        import presidio_analyzer  # noqa: F401
        import thinc.compat  # noqa: F401  # decides has_torch once, here
    finally:
        for _m in _HIDDEN:
            if sys.modules.get(_m, 0) is None:
                del sys.modules[_m]

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult  # noqa: E402
from presidio_analyzer.predefined_recognizers import (  # noqa: E402
    CreditCardRecognizer,
    EmailRecognizer,
    MacAddressRecognizer,
)

__all__ = ["AnalyzerEngine", "EntityRecognizer", "RecognizerRegistry", "RecognizerResult", "CreditCardRecognizer",
           "EmailRecognizer", "MacAddressRecognizer"]
