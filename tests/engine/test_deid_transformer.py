"""engine.deid's transformer recogniser (fine-tuned MiniLM served with onnxruntime, package data): a name with no
cue is found, eponyms stay, offsets are exact in short and long (windowed) notes, and the setting chooses it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.deid import DeidConfig, Deidentifier
from engine.deid.recognizers.transformer import MODEL_DIR, TransformerRecognizer
from engine.pipeline.deidentify import make_deidentifier
from schemas.settings import EngineSettings


@pytest.fixture(scope="module")
def model() -> TransformerRecognizer:
    return TransformerRecognizer()


def _found(model: TransformerRecognizer, text: str) -> list[str]:
    return [text[r.start : r.end] for r in model.analyze(text)]


def test_finds_a_name_with_no_cue_with_exact_offsets(model):
    text = "Babatunde Olatunji called about the refill. BP 128/76."
    assert "Babatunde Olatunji" in _found(model, text)


def test_keeps_eponyms(model):
    text = "History of Wilson's disease and Parkinson disease; Graves disease treated. Positive Babinski sign."
    found = " ".join(_found(model, text))
    assert not any(w in found for w in ("Wilson", "Parkinson", "Graves", "Babinski")), found


def test_offsets_are_exact_across_windows_and_accents(model):
    name = "Zoë Łukaszewicz-Aykaç"
    filler = "Vitals stable, exam unchanged, labs reviewed with the team. " * 60  # ~700 word pieces: several windows
    for text in (f"{name} called about her mother.", f"{filler}{name} called about her mother. {filler}"):
        spans = model.tagger.entities([text])[0]
        assert any(text[s:e] == name and label == "NAME" for s, e, label in spans), [text[s:e] for s, e, _ in spans]
        assert all(text[s:e] == text[s:e].strip() and e > s for s, e, _ in spans)


def test_empty_and_odd_text(model):
    assert model.analyze("") == []
    assert isinstance(model.analyze("Jo\ud800hn \u200bcalled."), list)  # a lone surrogate does not break the tokenizer


def test_setting_chooses_the_transformer(monkeypatch):
    monkeypatch.setenv("ICDCODER_ENGINE_DEID_MODEL", "rules+transformer")
    assert any(isinstance(r, TransformerRecognizer) for r in make_deidentifier(EngineSettings()).recognizers)
    both = Deidentifier(DeidConfig(model="rules+ner+transformer"))
    assert "Olatunji" not in both.deidentify("Then Olatunji called back.").text
    with pytest.raises(FileNotFoundError, match="deid-transformer"):
        TransformerRecognizer(MODEL_DIR / "nowhere")


def test_ships_as_package_data_with_its_data_card():
    for name in ("model.onnx", "tokenizer.json", "tags.json", "training.json", "DATA_CARD.md"):
        assert (MODEL_DIR / name).is_file(), name
    assert (MODEL_DIR / "model.onnx").stat().st_size < 25_000_000


def test_shared_filter_drops_punctuation_ratios_and_hyphenated_clinical_words(model):
    from schemas.phi import PhiCategory as C

    assert not model._keep("Glasgow 14. Rocha", 10, 11, C.NAME)  # punctuation alone
    assert not model._keep("BP 148/82 today", 3, 9, C.DATE) and not model._keep("Apgar 8/9.", 6, 9, C.DATE)  # ratios, scores
    assert model._keep("seen 3/11 with NSTEMI", 5, 9, C.DATE)
    assert not model._keep("Steri-Strips noted.", 0, 12, C.NAME)  # a protected word joined to an ordinary one
    assert model._keep("Then Wilson-Hope called.", 5, 16, C.NAME)  # a surname that is an eponym only before a head noun
    assert not model._keep("at Converse. Vitals stable.", 13, 19, C.ADDRESS)  # one ordinary word opening a sentence


def test_served_without_torch():
    code = ("import sys; from engine.deid import Deidentifier, DeidConfig; d = Deidentifier(DeidConfig(model='rules+transformer')); "
            "d.deidentify('Sione Taufa called.'); assert 'torch' not in sys.modules, 'torch loaded'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
