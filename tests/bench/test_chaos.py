"""The chaos benchmark's machinery on the real servers, bounded: the engine SIGKILLed exactly between "outputs
acknowledged" and "offsets committed" (forced by the proxy, not hoped for), and a deeply nested message
mid-stream. The whole fault matrix with recovery times runs in ``python -m bench run --only chaos``."""

from __future__ import annotations

import pytest

from bench.families.chaos import run_faults
from bench.report import chaos_section

pytestmark = pytest.mark.servers


def test_kill_before_commit_and_poison_lose_nothing(tmp_path, handbuilt_model_repo):
    results = run_faults(tmp_path, handbuilt_model_repo, "bert_xml", notes=8,
                         faults=("engine_kill_before_commit", "nested_message"), triton_available=False)
    kill, nested = results
    assert "error" not in kill and "error" not in nested, results
    assert kill["lost"] == 0 and kill["non_identical_duplicates"] == 0 and kill["engine_restarts"] == 1
    assert kill["output_records"] > kill["outputs_distinct"]  # the uncommitted batch really was emitted twice
    assert nested["lost"] == 0 and nested["dead_letter_kinds"] == ["too_deep"] and nested["engine_restarts"] == 0
    report = "\n".join(chaos_section({"what": "test", "notes_per_fault": 8, "faults": results, "all_met": True}))
    assert "engine_kill_before_commit" in report and "nested_message" in report


def test_triton_kill_recovers_without_loss(tmp_path, exported_model_repo):
    from tests.fixtures.model_repo import MODEL_NAME

    (result,) = run_faults(tmp_path, exported_model_repo, MODEL_NAME, notes=8, faults=("triton_kill",))
    assert "error" not in result, result
    assert result["lost"] == 0 and result["non_identical_duplicates"] == 0 and result["engine_restarts"] == 0
