"""De-identification of note text (HIPAA Safe Harbor identifiers that occur in clinical text).

    from engine.deid import Deidentifier, DeidConfig, DeidResult, DeidError
    d = Deidentifier(DeidConfig())           # build once, reuse; thread-safe for reads
    r = d.deidentify(text, patient_key=None)  # r.text, r.replacements, r.to_original(s, e), r.detected

Every note is de-identified before the model, logs or audit see it; the trainer applies the same
transformation to training text so placeholders (``schemas.phi.PhiCategory(...).placeholder``) match.
"""

from engine.deid import _presidio  # noqa: F401  # first: keeps torch out (see its docstring)
from engine.deid.deidentifier import Deidentifier
from engine.deid.types import DeidConfig, DeidError, DeidResult

__all__ = ["Deidentifier", "DeidConfig", "DeidResult", "DeidError"]
