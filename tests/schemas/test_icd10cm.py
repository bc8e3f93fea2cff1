"""The ICD-10-CM 2026 code set: normalisation, validity, hierarchy, nearest valid ancestor, mapping."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.icd10cm import RELEASE, CodeMapping, load_code_set, normalise


@pytest.fixture(scope="module")
def code_set():
    return load_code_set()


@pytest.mark.parametrize(
    "raw, expected",
    [("e119", "E11.9"), ("t81.4xx", "T81.4XX"), (" I10 ", "I10"), ("E11.9", "E11.9"), ("s72001a", "S72.001A"), ("z99.99", "Z99.99"), ("f32.a", "F32.A")],
)
def test_normalise(raw, expected):
    assert normalise(raw) == expected


def test_validity_billable_or_not(code_set):
    assert RELEASE == "ICD-10-CM 2026" and code_set.release == RELEASE
    assert load_code_set() is code_set  # built once
    assert code_set.is_valid("e119") and code_set.is_billable("E11.9")
    assert code_set.is_valid("E11") and not code_set.is_billable("E11")  # categories are valid labels too
    assert code_set.is_valid("F32.A") and code_set.is_valid("G20.A1")  # codes added after 2019
    assert code_set.is_valid("S72.001A")
    for not_a_code in ("4", "E08-E13", "T81.4XXA", "Z99.99", "XYZ", ""):
        assert not code_set.is_valid(not_a_code), not_a_code
    assert len(code_set.codes()) > 90_000


def test_descriptions_and_hierarchy(code_set):
    assert code_set.description("e11.9") == "Type 2 diabetes mellitus without complications"
    assert code_set.description("I10") == "Essential (primary) hypertension"
    assert code_set.parent("E11.9") == "E11"
    assert code_set.ancestors("E11.9") == ("E11", "E08-E13", "4")
    assert code_set.ancestors("E11.65", codes_only=True) == ("E11.6", "E11")
    assert code_set.chapter("E11.9") == "4" and code_set.block("E11.9") == "E08-E13"
    assert code_set.chapter("I10") == "9" and code_set.block("I10") == "I10-I1A"
    # a block holding a single category shares its name: no self-loop in the hierarchy
    assert code_set.ancestors("C7A.00", codes_only=True) == ("C7A.0", "C7A")
    assert code_set.block("C7A.00") == "C7A" and code_set.chapter("C7A.00") == "2"
    with pytest.raises(KeyError, match="not in ICD-10-CM 2026"):
        code_set.description("Q99.99")


@pytest.mark.parametrize(
    "raw, nearest",
    [("t81.4xx", "T81.4"), ("T81.4XXA", "T81.4"), ("Z99.99", "Z99"), ("s02.0xx", "S02.0"), ("e119", "E11.9"), ("E11.99", "E11.9"), ("XYZ", None), ("U99", None)],
)
def test_nearest_valid(code_set, raw, nearest):
    assert code_set.nearest_valid(raw) == nearest


def test_map_codes(code_set):
    mapping = code_set.map_codes(["e119", "t81.4xx", "Z99.99", "XYZ", "e119", "I10"])
    assert mapping.mapped == {"t81.4xx": "T81.4", "Z99.99": "Z99"}
    assert mapping.unmappable == ["XYZ"]
    assert mapping.counts == {"total": 5, "valid": 2, "mapped": 2, "unmappable": 1}
    assert [mapping.apply(c) for c in ("e119", "t81.4xx", "XYZ")] == ["E11.9", "T81.4", None]
    assert CodeMapping.model_validate_json(mapping.model_dump_json()) == mapping


def test_codiesp_train_codes_against_the_code_set(code_set, data_dir):
    lines = (data_dir / "codiesp" / "train" / "trainD.tsv").read_text(encoding="utf-8").splitlines()
    codes = [line.split("\t")[1] for line in lines if line.strip()]
    distinct = set(codes)
    invalid = sorted(c for c in distinct if not code_set.is_valid(c))
    assert len(distinct) == 1767
    assert len(invalid) == 50  # 2.8%: mostly cut before the 7th character, e.g. "s02.0xx"
    mapping = code_set.map_codes(codes)
    assert mapping.counts == {"total": 1767, "valid": 1717, "mapped": 50, "unmappable": 0}
    for original, target in mapping.mapped.items():  # always an ancestor: a prefix of the original
        assert normalise(original).startswith(target) and code_set.is_valid(target)


@functools.lru_cache(maxsize=1)
def _sample() -> list[str]:
    return sorted(load_code_set().codes())[::97]  # ~1,000 codes across all chapters (built lazily, not at collection)


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, 1000), suffix=st.text(alphabet="0123456789XAZ", max_size=4), lower=st.booleans(), dotless=st.booleans())
def test_nearest_valid_is_a_valid_prefix(index, suffix, lower, dotless):
    """Whatever is appended to a valid code, and however it is written, the nearest valid code is a valid
    prefix of it, and never shorter than the original valid code."""
    code_set = load_code_set()
    code = _sample()[index % len(_sample())]
    raw = (code + suffix).replace(".", "" if dotless else ".")
    raw = raw.lower() if lower else raw
    nearest = code_set.nearest_valid(raw)
    assert nearest is not None and code_set.is_valid(nearest)
    assert normalise(raw).startswith(nearest) and len(nearest) >= len(code)
    assert normalise(normalise(raw)) == normalise(raw)
