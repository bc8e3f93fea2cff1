"""EHR WordPiece vocabulary: placeholders never split, HF/serving loaders, the paper's OOV measure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

from schemas.cli import UserError
from schemas.phi import PLACEHOLDERS
from schemas.text import CLS, SEP, SPECIAL_TOKENS, load_tokenizer
from trainer.pretrain.data import is_held_out, load_corpus
from trainer.vocab import oov_stats, train_wordpiece


def test_saved_directory_loads_everywhere(tiny_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tiny_tokenizer_dir / name).is_file(), name
    hf = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    raw = load_tokenizer(tiny_tokenizer_dir)
    assert hf.vocab_size == raw.get_vocab_size() == 1500
    # special tokens first, [PAD] = 0, and vocab.txt lines are ids
    vocab_lines = (tiny_tokenizer_dir / "vocab.txt").read_text().splitlines()
    assert vocab_lines[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert hf.pad_token_id == 0 and hf.mask_token == "[MASK]"
    ids = hf("Chest pain since Monday")["input_ids"]
    assert ids[0] == raw.token_to_id(CLS) and ids[-1] == raw.token_to_id(SEP)
    assert ids == raw.encode("Chest pain since Monday").ids  # the trainer and the engine agree
    assert hf.model_max_length == 1024


def test_placeholders_are_never_split(tiny_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    raw = load_tokenizer(tiny_tokenizer_dir)
    hf = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    text = "Seen on [DATE] by Dr. [NAME],[PHONE];[ID][ADDRESS] " + " ".join(PLACEHOLDERS)
    tokens = raw.encode(text, add_special_tokens=False).tokens
    for placeholder in PLACEHOLDERS:
        assert placeholder in tokens, placeholder
        assert tokens.count(placeholder) == text.count(placeholder)
    assert hf.convert_ids_to_tokens(hf(text, add_special_tokens=False)["input_ids"]) == tokens


def test_vocab_is_lower_cased(tiny_tokenizer_dir: Path) -> None:
    raw = load_tokenizer(tiny_tokenizer_dir)
    assert raw.encode("HYPERTENSION").ids == raw.encode("hypertension").ids


def _hand_made_tokenizer() -> Tokenizer:
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "chest", "pain", "##s", "no", ".", "short", "##ness"])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = BertNormalizer(lowercase=True)
    tok.pre_tokenizer = BertPreTokenizer()
    return tok


def test_oov_counts_split_and_unknown_words_per_note() -> None:
    tok = _hand_made_tokenizer()
    notes = [
        "Chest pains.",  # "pains" -> pain ##s: 1 OOV word
        "No chest pain. Shortness xyz",  # "shortness" -> short ##ness, "xyz" -> [UNK]: 2
        "no pain",  # 0
    ]
    stats = oov_stats(tok, notes)
    assert stats.notes == 3
    assert stats.words == 3 + 6 + 2
    assert stats.oov_words == 3 and stats.unk_words == 1
    assert stats.oov_per_note == pytest.approx(1.0)
    assert stats.oov_share == pytest.approx(3 / 11)


def test_ehr_vocab_has_fewer_oov_words_than_general_english(tiny_tokenizer_dir: Path, synthetic_texts: list[str]) -> None:
    from trainer.encoder import minilm_dir

    held_out = synthetic_texts[-10:]
    ehr = oov_stats(load_tokenizer(tiny_tokenizer_dir), held_out)
    general = oov_stats(load_tokenizer(minilm_dir()), held_out)
    assert ehr.words > 0 and general.words > 0
    assert ehr.oov_per_note < general.oov_per_note


def test_bad_vocab_size_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="special tokens"):
        train_wordpiece(["some text"], vocab_size=10)


def test_corpus_errors_and_held_out_split(tmp_path: Path) -> None:
    empty = tmp_path / "notes.jsonl"
    empty.write_text(json.dumps({"note_id": "a", "text": "short"}) + "\n" + json.dumps({"note_id": "b", "text": " too short "}) + "\n")
    with pytest.raises(UserError, match="no usable text"):
        load_corpus(None, sources=(), jsonl=[empty])
    test_split = tmp_path / "test.jsonl"
    test_split.write_text(json.dumps({"note_id": "t", "text": "a test note that must not shape the vocabulary"}) + "\n")
    with pytest.raises(UserError, match="test split"):
        load_corpus(None, sources=(), jsonl=[test_split])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1"):
        load_corpus(None, sources=(), jsonl=[bad])
    texts = [f"patient {i} presented with chest pain and shortness of breath" for i in range(400)]
    held = [t for t in texts if is_held_out(t, 5.0)]
    assert 5 <= len(held) <= 40  # ~5%, decided by the text alone
    assert held == [t for t in texts if is_held_out(t, 5.0)]


def test_vocab_command_writes_tokenizer_and_oov_report(tmp_path: Path, synthetic_notes, capsys: pytest.CaptureFixture[str]) -> None:
    from schemas.cli import main
    from trainer.__main__ import COMMANDS

    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(n.record.model_dump_json() + "\n" for n in synthetic_notes[:80]))
    out = tmp_path / "vocab"
    argv = ["vocab", "--out", str(out), "--vocab-size", "3000", "--sources", "--notes", str(notes), "--held-out-percent", "20"]
    assert main("python -m trainer", "", COMMANDS, argv) == 0  # de-identification on, as by default
    printed = capsys.readouterr().out
    assert "OOV words/note" in printed and "EHR (this vocabulary)" in printed
    report = json.loads((out / "oov.json").read_text())
    assert report["deidentified"] is True and report["vocab_notes"] + report["held_out_notes"] == 80
    general, ehr = report["oov"].values()
    assert ehr["vocab_size"] <= 3000 and general["vocab_size"] == 30522
    assert ehr["oov_per_note"] < general["oov_per_note"]
    tok = load_tokenizer(out)
    # the synthetic notes carry planted PHI: after de-identification raw names/dates are gone from the
    # training text, and the placeholders are whole tokens
    assert tok.encode("[DATE] [NAME]", add_special_tokens=False).tokens == ["[DATE]", "[NAME]"]
