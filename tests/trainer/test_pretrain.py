"""MLM pretraining of a tiny BERT and the shared training infrastructure (loop, resume, precision)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from schemas.cli import UserError, main
from schemas.text import load_tokenizer
from trainer.encoder import encoder_config
from trainer.pretrain.data import MaskingConfig, MlmBatcher, build_examples
from trainer.pretrain.train import PretrainSetup, pretrain
from trainer.training import (
    MixedPrecision,
    OptimConfig,
    batch_generator,
    epoch_batches,
    load_config,
    setup_distributed,
)

torch.set_num_threads(1)
MAX_LENGTH = 64


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def pretrain_texts(synthetic_texts: list[str]) -> list[str]:
    return synthetic_texts[:40]


def _setup(tokenizer_dir: Path, **encoder_sets: object) -> PretrainSetup:
    sets = [f"{k}={v}" for k, v in encoder_sets.items()]
    return PretrainSetup(init="tiny", encoder=encoder_config("tiny", sets=sets), tokenizer_dir=str(tokenizer_dir), max_length=MAX_LENGTH)


def _optim(**kw: object) -> OptimConfig:
    base = dict(lr=5e-3, batch_size=8, max_steps=16, warmup_ratio=0.1, checkpoint_every=4, log_every=2, seed=7)
    return OptimConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path, pretrain_texts: list[str]) -> tuple[Path, dict, dict[int, float]]:
    """An uninterrupted tiny pretraining run: (run dir, summary, loss per step)."""
    out = tmp_path_factory.mktemp("pretrain_full")
    losses: dict[int, float] = {}
    summary = pretrain(_setup(tiny_tokenizer_dir), _optim(), setup_distributed("cpu"), out, pretrain_texts, pretrain_texts[:4],
                       on_step=lambda state, loss: losses.__setitem__(state.step, loss))
    return out, summary, losses


def test_mlm_loss_falls_and_outputs_are_written(full_run: tuple[Path, dict, dict[int, float]], tiny_tokenizer_dir: Path) -> None:
    out, summary, losses = full_run
    assert sorted(losses) == list(range(1, 17))
    first, last = sum(losses[s] for s in (1, 2, 3)) / 3, sum(losses[s] for s in (14, 15, 16)) / 3
    assert first > 6.5  # ~ln(1500) at random init
    assert last < first - 0.5
    for name in ("summary.json", "loss.png", "model/config.json", "model/model.safetensors", "model/tokenizer.json"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "summary.json").read_text())
    assert saved["steps"] == 16 and saved["tokens"] > 0 and saved["tokens_per_s"] > 0
    assert 0 < saved["real_token_share"] <= 1 and saved["cpu_peak_rss_mb"] > 0
    assert saved["held_out_loss"] > 0


def test_saved_model_and_tokenizer_reload(full_run: tuple[Path, dict, dict[int, float]]) -> None:
    from transformers import AutoModel, AutoTokenizer, BertModel

    from trainer.cli.fill_mask import MaskFiller
    from trainer.encoder import load_encoder

    model_dir = full_run[0] / "model"
    model = AutoModel.from_pretrained(str(model_dir))
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    assert isinstance(model, BertModel) and model.config.hidden_size == 64
    enc = tok("no chest pain on [DATE]", return_tensors="pt")
    assert model(**enc).last_hidden_state.shape[-1] == 64
    assert isinstance(load_encoder(model_dir, vocab_size=tok.vocab_size), BertModel)
    predictions = MaskFiller(model_dir)("no chest [MASK] or discomfort", top_k=3)
    assert len(predictions) == 1 and len(predictions[0]) == 3
    probs = [p.probability for p in predictions[0]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1


def test_resume_after_interruption_gives_the_same_losses(
    full_run: tuple[Path, dict, dict[int, float]], tmp_path: Path, tiny_tokenizer_dir: Path, pretrain_texts: list[str]
) -> None:
    _, _, reference = full_run
    info = setup_distributed("cpu")

    def crash_at_6(state, loss):  # after the step-4 checkpoint, before the step-8 one
        if state.step == 6:
            raise Interrupted

    with pytest.raises(Interrupted):
        pretrain(_setup(tiny_tokenizer_dir), _optim(), info, tmp_path, pretrain_texts, on_step=crash_at_6)
    assert (tmp_path / "checkpoints" / "step-4").is_dir()

    with pytest.raises(UserError, match="--resume"):
        pretrain(_setup(tiny_tokenizer_dir), _optim(), info, tmp_path, pretrain_texts)
    with pytest.raises(UserError, match="different configuration"):
        pretrain(_setup(tiny_tokenizer_dir), _optim(lr=1e-3), info, tmp_path, pretrain_texts, resume=True)

    torch.manual_seed(999)  # the resumed run must not depend on the fresh process's RNG
    resumed: dict[int, float] = {}
    summary = pretrain(_setup(tiny_tokenizer_dir), _optim(), info, tmp_path, pretrain_texts, resume=True,
                       on_step=lambda state, loss: resumed.__setitem__(state.step, loss))
    assert sorted(resumed) == list(range(5, 17))
    for step, loss in resumed.items():
        assert loss == pytest.approx(reference[step], rel=1e-5, abs=1e-6), step
    assert summary["resumed_from"].endswith("step-4")


def test_bad_inputs_fail_before_training(tmp_path: Path, tiny_tokenizer_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note_id": "n1", "text": "Patient denies chest pain. Blood pressure is stable on lisinopril."}) + "\n")
    base = ["pretrain", "--out", str(tmp_path / "run"), "--init", "tiny", "--tokenizer", str(tiny_tokenizer_dir),
            "--sources", "--notes", str(notes), "--no-deid", "--held-out-percent", "0", "--max-length", "32"]
    commands = __import__("trainer.__main__", fromlist=["COMMANDS"]).COMMANDS
    assert main("python -m trainer", "", commands, [*base, "--set", "hidden_size=65"]) == 2
    assert "not divisible" in capsys.readouterr().err
    assert main("python -m trainer", "", commands, [*base, "--precision", "fp16"]) == 2
    assert "fp16 needs a CUDA GPU" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"note_id": "n2", "text": "   ..."}) + "\n")
    assert main("python -m trainer", "", commands, [*base[:-7], "--notes", str(empty), "--no-deid", "--max-length", "32"]) == 2
    assert "no usable text" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_mlm_masking_is_bert_style_and_redrawn_per_epoch(tiny_tokenizer_dir: Path, pretrain_texts: list[str]) -> None:
    tok = load_tokenizer(tiny_tokenizer_dir)
    examples = build_examples(pretrain_texts, tok, MAX_LENGTH)
    assert all(len(e) <= MAX_LENGTH for e in examples)
    assert sum(map(len, examples)) / (len(examples) * MAX_LENGTH) > 0.9  # packing leaves little padding
    batcher = MlmBatcher(examples, tok, MaskingConfig())
    indices = list(range(len(examples)))
    batch = batcher(indices, batch_generator(0, 0, 0))
    chosen = batch["labels"] != -100
    real = batch["attention_mask"].bool()
    share = float(chosen.sum() / real.sum())
    assert 0.12 < share < 0.18
    masked = float((batch["input_ids"][chosen] == tok.token_to_id("[MASK]")).float().mean())
    assert 0.75 < masked < 0.85
    assert not chosen[~real].any()  # padding is never predicted
    for special in ("[CLS]", "[SEP]"):
        assert not chosen[batch["labels"] == tok.token_to_id(special)].any()
    again = batcher(indices, batch_generator(0, 0, 0))
    next_epoch = batcher(indices, batch_generator(0, 1, 0))
    assert torch.equal(again["labels"], batch["labels"])
    assert not torch.equal(next_epoch["labels"], batch["labels"])


def test_batches_are_deterministic_and_sharded() -> None:
    lengths = [10 + (i * 7) % 50 for i in range(103)]
    a = epoch_batches(lengths, 4, seed=1, epoch=0)
    assert a == epoch_batches(lengths, 4, seed=1, epoch=0)
    assert a != epoch_batches(lengths, 4, seed=1, epoch=1)
    ranks = [epoch_batches(lengths, 4, seed=1, epoch=0, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    seen = [i for r in ranks for b in r for i in b]
    assert len(seen) == len(set(seen))


def test_optim_config_overrides_and_precision(tmp_path: Path) -> None:
    f = tmp_path / "optim.json"
    f.write_text(json.dumps({"lr": 1e-4, "precision": "bf16"}))
    cfg = load_config(OptimConfig(), str(f), ["grad_accum_steps=4", "max_steps=1e3"])
    assert (cfg.lr, cfg.precision, cfg.grad_accum_steps, cfg.max_steps) == (1e-4, "bf16", 4, 1000)
    with pytest.raises(UserError, match="precision"):
        load_config(OptimConfig(), None, ["precision=fp8"])
    with pytest.raises(UserError, match="batch_size must be >= 1"):
        OptimConfig(batch_size=0)
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        MixedPrecision("fp16", torch.device("cpu"))
    # bf16 autocast on CPU with accumulation: gradients equal the full-batch gradient, up to bf16 rounding
    layer = torch.nn.Linear(16, 1)
    x, y = torch.randn(8, 16), torch.randn(8, 1)
    prec = MixedPrecision("bf16", torch.device("cpu"), grad_accum_steps=2, max_grad_norm=0)
    for half in (slice(0, 4), slice(4, 8)):
        with prec.autocast():
            out = layer(x[half])
        assert out.dtype == torch.bfloat16
        prec.backward(((out.float() - y[half]) ** 2).mean())
    accumulated = layer.weight.grad.clone()
    layer.zero_grad()
    ((layer(x) - y) ** 2).mean().backward()
    assert torch.allclose(accumulated, layer.weight.grad, rtol=0.05, atol=0.02)


def test_step_returns_the_gradient_norm_before_clipping() -> None:
    layer = torch.nn.Linear(16, 1)
    for max_grad_norm in (0.0, 1e-4):  # no clipping; clipping far below the norm
        prec = MixedPrecision("fp32", torch.device("cpu"), max_grad_norm=max_grad_norm)
        prec.backward(((layer(torch.randn(8, 16)) - 5) ** 2).mean())
        expected = float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in layer.parameters()])))
        assert expected > 1e-2
        assert prec.step(layer, torch.optim.SGD(layer.parameters(), lr=0.0)) == pytest.approx(expected, rel=1e-5)


def test_loop_epochs_accumulation_and_early_stop(tmp_path: Path) -> None:
    from trainer.training import TrainingLoop

    x, y = torch.randn(40, 4), torch.randn(40, 1)
    info = setup_distributed("cpu")
    cfg = OptimConfig(lr=1e-2, batch_size=4, epochs=2, grad_accum_steps=3, log_every=1)

    def run(out: Path, stop_at: int | None) -> tuple[TrainingLoop, list[int], object]:
        epochs_done: list[int] = []
        model = torch.nn.Linear(4, 1)
        loop = TrainingLoop(model, cfg, info, out, [1] * 40, lambda idx, gen: {"x": x[idx], "y": y[idx], "input_ids": x[idx]},
                            lambda m, b: ((m(b["x"]) - b["y"]) ** 2).mean(), "h",
                            on_step=lambda s, loss: loop.stop() if s.step == stop_at else None,
                            on_epoch_end=lambda s: epochs_done.append(s.epoch))
        return loop, epochs_done, loop.run()

    loop, epochs_done, result = run(tmp_path / "full", None)
    assert loop.steps_per_epoch == 4  # 10 micro-batches in groups of 3: 3 + 3 + 3 + 1
    assert result.state.step == 8 and result.state.examples == 80 and epochs_done == [1, 2]
    assert len(result.state.loss_history) == 8
    assert [s for s, _ in result.state.grad_norm_history] == [s for s, _ in result.state.loss_history]
    assert all(norm > 0 for _, norm in result.state.grad_norm_history)
    _, epochs_done, result = run(tmp_path / "stopped", 3)
    assert result.state.step == 3 and epochs_done == []
    assert (tmp_path / "stopped" / "checkpoints" / "step-3").is_dir()


def test_auto_precision_takes_bf16_on_a_cpu_only_where_the_probe_measures_it_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer.training import precision

    cpu = torch.device("cpu")
    with torch.no_grad():  # callers may be inside no_grad (the description scorer's embeddings)
        assert precision.cpu_bf16_speedup() > 0
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 0.7)  # a Xeon with AVX512-BF16 and no AMX
    assert precision.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 3.0)  # an EPYC with AVX512-BF16
    assert precision.resolve_precision("auto", cpu) == "bf16"
    assert precision.resolve_precision("fp32", cpu) == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert precision.resolve_precision("auto", cpu) == "fp32"  # emulated bf16 is never chosen
