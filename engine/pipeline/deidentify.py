"""Stage 2: original note text -> de-identified text the model sees, via ``engine.deid``.

The de-identifier is the same one the trainer ran over training text, so placeholders match what the
model learned. A failure is the note's failure (``deid_failed``): a note that could not be de-identified
never reaches the model, the audit log or any output.
"""

from __future__ import annotations

from engine.deid import DeidConfig, Deidentifier, DeidError, DeidResult
from engine.pipeline.types import ParsedNote
from schemas.errors import ProcessingError
from schemas.settings import EngineSettings


def make_deidentifier(settings: EngineSettings) -> Deidentifier:
    """The service's de-identifier: rules + learned NER by default (``ICDCODER_ENGINE_DEID_MODEL=rules`` for
    the rules alone). Date shifting (``ICDCODER_ENGINE_DEID_DATE_SHIFT``) needs a secret salt
    (``ICDCODER_ENGINE_DEID_DATE_SHIFT_SALT``); without one the settings are refused, not silently ignored."""
    if not settings.deid_date_shift:
        return Deidentifier(DeidConfig(model=settings.deid_model))
    salt = settings.deid_date_shift_salt
    salt_value = salt.get_secret_value() if salt is not None else ""
    if not salt_value:
        raise ValueError("ICDCODER_ENGINE_DEID_DATE_SHIFT=true needs ICDCODER_ENGINE_DEID_DATE_SHIFT_SALT")
    return Deidentifier(DeidConfig(date_shift=True, date_shift_salt=salt_value, model=settings.deid_model))


def deidentify_note(deidentifier: Deidentifier, note: ParsedNote) -> DeidResult:
    """De-identify one note; the patient reference keys consistent surrogates within a patient."""
    try:
        return deidentifier.deidentify(note.text, patient_key=note.subject)
    except DeidError as err:
        # The error type only: a de-identifier's message could quote the text it choked on.
        raise ProcessingError("deid_failed", type(err).__name__) from None
