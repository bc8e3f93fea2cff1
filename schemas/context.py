"""Evidence context: what the words around a suggestion's evidence say about the condition, and what a model
version does with suggestions whose evidence does not affirm it. The classifier is
``engine.pipeline.context``; this module holds the vocabulary both the engine and the trainer's export write.

Context classes (one per evidence span; docs/context.md has the labelling guidelines):

- ``affirmed``: the condition is stated as present in the patient (the default when no cue applies);
- ``negated``: stated as absent ("no evidence of pneumonia", "denies chest pain", "effusion was ruled out");
- ``uncertain``: possible, suspected or hypothetical ("rule out PE", "possible pneumonia", "return if fever");
- ``historical``: in the patient's past ("history of breast cancer, in remission", "status post MI");
- ``family``: about someone other than the patient ("mother had diabetes", a FAMILY HISTORY section).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Context = Literal["affirmed", "negated", "uncertain", "historical", "family"]
CONTEXTS: tuple[Context, ...] = ("affirmed", "negated", "uncertain", "historical", "family")
# What a model version does with a suggestion whose evidence is all negated (or all family):
# keep: unchanged, flagged; demote: its score lowered below its threshold (still shown, last, flagged; the
# audit keeps the model's score); suppress: left out of the output (FHIR, worklist), kept in the audit record.
ContextAction = Literal["keep", "demote", "suppress"]
ACTION_ORDER: dict[ContextAction, int] = {"keep": 0, "demote": 1, "suppress": 2}

# ICD-10-CM family-history categories: their evidence IS a family member's condition, so the family rule
# never removes them ("mother had breast cancer" supports Z80.3).
FAMILY_HISTORY_CODE_PREFIXES = ("Z80", "Z81", "Z82", "Z83", "Z84")


class ContextPolicy(BaseModel):
    """Per model version (``ModelMetadata.context_policy``). Uncertain and historical evidence is always kept
    and flagged: "rule out PE" and "history of breast cancer" are often what a coder codes (Z85.3, workup codes).
    The defaults were chosen from the measurement in the bench ``context`` family (docs/context.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    negated: ContextAction = "keep"
    family: ContextAction = "keep"
    # demoted score = model score x threshold x demote_factor: below the threshold for any score <= 1,
    # and demoted codes keep their order among themselves.
    demote_factor: float = Field(0.5, gt=0, lt=1)
    family_history_codes: tuple[str, ...] = FAMILY_HISTORY_CODE_PREFIXES

    def action(self, context: Context) -> ContextAction:
        return self.negated if context == "negated" else self.family if context == "family" else "keep"

    def exempt(self, code: str, context: Context) -> bool:
        """Codes whose meaning is the context itself are not touched by it (family-history codes and family)."""
        return context == "family" and code.upper().startswith(self.family_history_codes)
