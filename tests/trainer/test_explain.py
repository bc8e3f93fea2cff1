"""Explanations: XML attention mapped back to the note's characters (HTML) and the heads grid (PNG)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from schemas.cli import UserError, main
from schemas.text import load_tokenizer
from trainer.__main__ import COMMANDS
from trainer.evaluate.explain import code_attention, render_html
from trainer.models import load_finetuned


@pytest.fixture(scope="module")
def note_and_code(synthetic_dataset_dir, tiny_xml_run_dir):
    coder = load_finetuned(tiny_xml_run_dir)
    for line in (synthetic_dataset_dir / "test.jsonl").read_text().splitlines():
        record = json.loads(line)
        codes = [c for c in record["codes"] if c in coder.labels.index]
        if codes and len(record["text"]) > 1500:  # several 128-token segments
            return record["text"], codes[0]
    pytest.fail("no long coded test note in the synthetic dataset")


def test_attention_maps_back_to_the_characters_of_each_token(tiny_xml_run_dir, note_and_code):
    text, code = note_and_code
    coder = load_finetuned(tiny_xml_run_dir)
    tokenizer = load_tokenizer(tiny_xml_run_dir)
    result = code_attention(coder, tokenizer, text, code)
    assert len(result.segments) > 1 and result.char_weights.shape == (len(text),)
    for s, segment in enumerate(result.segments):
        weights = result.attention[s, : len(segment)]
        np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-5)
        assert np.all(result.attention[s, len(segment):] == 0)  # padding of shorter segments
        for i, (start, end) in enumerate(segment.offsets):
            if end > start:
                assert np.all(result.char_weights[start:end] >= weights[i] - 1e-7)
    covered = np.zeros(len(text), dtype=bool)
    for segment in result.segments:
        for start, end in segment.offsets:
            covered[start:end] = True
    assert np.all(result.char_weights[~covered] == 0)  # whitespace between tokens gets no shade
    page = render_html(text, result)
    assert code in page and "<span style=" in page and 0 < result.probability < 1


def test_explain_cli_writes_html_and_heads_png(tiny_xml_run_dir, note_and_code, tmp_path):
    text, code = note_and_code
    note = tmp_path / "note.txt"
    note.write_text(text, encoding="utf-8")
    argv = ["explain", "--run", str(tiny_xml_run_dir), "--note", str(note), "--code", code, "--out", str(tmp_path / "out")]
    assert main("python -m trainer", "", COMMANDS, argv) == 0
    stem = f"note_{code.replace('.', '_')}"
    assert (tmp_path / "out" / f"{stem}.html").stat().st_size > len(text)
    assert (tmp_path / "out" / f"{stem}_heads.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_code_is_a_clear_error(tiny_xml_run_dir):
    coder = load_finetuned(tiny_xml_run_dir)
    with pytest.raises(UserError, match="not in the model's label space"):
        code_attention(coder, load_tokenizer(tiny_xml_run_dir), "Hypertension.", "Z99.999")
