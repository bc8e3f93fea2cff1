"""Encoder presets, overrides and errors; loading; MiniLM position extension 512 -> 1,024."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from schemas.cli import UserError
from trainer.encoder import MIN_VOCAB_SIZE, PRESETS, encoder_config, extend_position_embeddings, load_encoder, minilm_dir

torch.set_num_threads(1)


def test_presets_follow_the_paper_and_overrides_apply(tmp_path: Path) -> None:
    assert (PRESETS["big"].hidden_size, PRESETS["big"].num_hidden_layers, PRESETS["big"].num_attention_heads) == (768, 12, 12)
    assert (PRESETS["small"].hidden_size, PRESETS["small"].num_hidden_layers, PRESETS["small"].intermediate_size) == (512, 8, 2048)
    assert all(p.max_position_embeddings == 1024 and p.hidden_act == "gelu" for p in PRESETS.values())
    override_file = tmp_path / "enc.json"
    override_file.write_text(json.dumps({"num_hidden_layers": 3, "hidden_dropout_prob": 0.2}))
    cfg = encoder_config("tiny", str(override_file), ["hidden_size=128", "num_attention_heads=4"])
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_hidden_layers, cfg.hidden_dropout_prob) == (128, 4, 3, 0.2)


def test_encoder_config_errors_are_clear() -> None:
    with pytest.raises(UserError, match="not divisible by num_attention_heads"):
        encoder_config("tiny", sets=["hidden_size=65"])
    with pytest.raises(UserError, match="unknown EncoderConfig field"):
        encoder_config("tiny", sets=["hiden_size=64"])
    with pytest.raises(UserError, match="not a valid int"):
        encoder_config("tiny", sets=["hidden_size=big"])
    with pytest.raises(UserError, match="unknown encoder preset"):
        encoder_config("huge")
    with pytest.raises(UserError, match="below the"):
        load_encoder("tiny", vocab_size=MIN_VOCAB_SIZE - 1)
    with pytest.raises(UserError, match="needs a vocab size"):
        load_encoder("tiny")


def test_fresh_encoder_uses_sdpa_and_the_preset_sizes() -> None:
    model = load_encoder("tiny", vocab_size=100)
    assert model.config._attn_implementation == "sdpa"
    assert model.config.hidden_size == 64 and model.config.max_position_embeddings == 1024
    out = model(input_ids=torch.randint(5, 100, (2, 1024)), attention_mask=torch.ones(2, 1024, dtype=torch.long))
    assert out.last_hidden_state.shape == (2, 1024, 64)


def test_minilm_extension_keeps_first_512_positions_and_runs_at_1024(tmp_path: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    from schemas.cli import main
    from trainer.__main__ import COMMANDS

    original = load_encoder("minilm")
    assert original.config.max_position_embeddings == 512
    out = tmp_path / "minilm-1024"
    assert main("python -m trainer", "", COMMANDS, ["extend-positions", "--model", "minilm", "--to", "1024", "--out", str(out)]) == 0

    extended = AutoModel.from_pretrained(str(out))
    tok = AutoTokenizer.from_pretrained(str(out))
    old_rows = original.embeddings.position_embeddings.weight
    new_rows = extended.embeddings.position_embeddings.weight
    assert new_rows.shape == (1024, old_rows.shape[1])
    assert torch.equal(new_rows[:512], old_rows)
    added = new_rows[512:]
    assert 0.01 < float(added.detach().std()) < 0.03  # N(0, initializer_range = 0.02)
    assert extended.embeddings.position_ids.shape == (1, 1024)
    assert extended.embeddings.token_type_ids.shape == (1, 1024)
    assert tok.model_max_length == 1024 and tok.vocab_size == original.config.vocab_size

    text = "no chest pain or discomfort " * 300
    enc = tok(text, truncation=True, max_length=1024, return_tensors="pt")
    assert enc["input_ids"].shape[1] == 1024
    extended.eval()
    original.eval()
    with torch.no_grad():
        hidden = extended(**enc).last_hidden_state
        short = {k: v[:, :128] for k, v in enc.items()}
        # inside the first 512 positions the extended model computes what the original did
        assert torch.allclose(extended(**short).last_hidden_state, original(**short).last_hidden_state, atol=1e-5)
    assert hidden.shape == (1, 1024, 384) and torch.isfinite(hidden).all()


def test_extension_in_memory_and_errors() -> None:
    model = load_encoder("tiny", vocab_size=50, max_positions=16)
    extend_position_embeddings(model, 32)
    assert model.config.max_position_embeddings == 32
    assert model(input_ids=torch.ones(1, 32, dtype=torch.long)).last_hidden_state.shape == (1, 32, 64)
    with pytest.raises(UserError, match="cannot shrink"):
        extend_position_embeddings(model, 8)
    with pytest.raises(UserError, match="not a model directory"):
        load_encoder("/nonexistent/model")
    assert (minilm_dir() / "config.json").is_file()
