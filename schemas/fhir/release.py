"""fhir.resources classes by FHIR release: "R4" messages are read and written with the R4B classes
(wire-compatible with R4 for DocumentReference, Condition, Provenance and Bundle), "R5" with the default ones."""

from __future__ import annotations

import importlib

FHIR_VERSIONS = ("R4", "R5")
_PACKAGES = {"R4": "fhir.resources.R4B", "R5": "fhir.resources"}


def resource_class(fhir_version: str, name: str) -> type:
    """E.g. ``resource_class("R4", "DocumentReference")`` -> ``fhir.resources.R4B.documentreference.DocumentReference``."""
    if fhir_version not in _PACKAGES:
        raise ValueError(f"fhir_version must be one of {FHIR_VERSIONS}, got {fhir_version!r}")
    return getattr(importlib.import_module(f"{_PACKAGES[fhir_version]}.{name.lower()}"), name)
