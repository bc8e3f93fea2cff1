"""The pretrained-transformer recogniser: all-MiniLM-L6-v2 fine-tuned for BIO token classification by
``python -m trainer deid-transformer``, run here with onnxruntime (no torch), shipped as package data in
``engine/deid/transformer`` with its data card.

Notes are tokenised with the model's own ``tokenizer.json`` and cut into overlapping windows by
``schemas.text.segment_notes`` (the classifier's segmentation); each word piece takes its tag from the window in
which it sits farthest from an edge, a word takes the tag of its first piece, and entities are mapped back to
characters through the tokenizer's offsets. Its output goes through the learned recognisers' shared filter
(``learned.LearnedRecognizer``): the same trimming and clinical-word protection as the spaCy model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.deid.lexicons import Lexicons
from engine.deid.recognizers.learned import _SURROGATES, LearnedRecognizer
from schemas.model_repo import ATTENTION_MASK, INPUT_IDS, SegmentationParams
from schemas.text import PAD, load_tokenizer, pad_batch, segment_notes

MODEL_DIR = Path(__file__).resolve().parents[1] / "transformer"
MODEL_FILE, TOKENIZER_FILE, TAGS_FILE = "model.onnx", "tokenizer.json", "tags.json"  # the folder the trainer writes
LOGITS = "logits"
WINDOWS_PER_CALL = 16


def continuation_pieces(tokenizer) -> np.ndarray:
    """By token id: True for the "##" pieces that continue the word before them (a word's tag is on its first piece)."""
    vocab = tokenizer.get_vocab()
    out = np.zeros(max(vocab.values()) + 1, dtype=bool)
    out[[i for t, i in vocab.items() if t.startswith("##")]] = True
    return out


class TransformerTagger:
    """``tags(texts)``: raw entities per text. One onnxruntime session; ``run`` is thread-safe in onnxruntime."""

    def __init__(self, model_dir: Path | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        from schemas.threads import configure_onnxruntime

        self.model_dir = Path(model_dir) if model_dir else MODEL_DIR
        if not (self.model_dir / MODEL_FILE).is_file():
            raise FileNotFoundError(f"no transformer recogniser at {self.model_dir} (train one: python -m trainer deid-transformer)")
        meta = json.loads((self.model_dir / TAGS_FILE).read_text(encoding="utf-8"))
        self.tags: list[str] = meta["tags"]
        self.params = SegmentationParams(max_length=meta["max_length"], stride=meta["stride"])
        self.tokenizer = load_tokenizer(self.model_dir / TOKENIZER_FILE)
        self.pad_id = self.tokenizer.token_to_id(PAD)
        self.continuation = continuation_pieces(self.tokenizer)
        options = configure_onnxruntime(ort.SessionOptions(), threads)
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.model_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"])

    def tag_ids(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per text: token ids, character offsets [n, 2] and the tag index of each word piece."""
        clean = [_SURROGATES.sub("\ufffd", t) for t in texts]  # lone surrogates cannot be encoded; same length
        segments = segment_notes(clean, self.tokenizer, self.params)
        order = sorted(range(len(segments)), key=lambda i: len(segments[i]))  # similar lengths share a batch
        logits: list[np.ndarray | None] = [None] * len(segments)
        for b in range(0, len(order), WINDOWS_PER_CALL):
            rows = order[b : b + WINDOWS_PER_CALL]
            ids, mask = pad_batch([segments[i] for i in rows], self.pad_id, multiple=8)
            out = self.session.run([LOGITS], {INPUT_IDS: ids, ATTENTION_MASK: mask})[0]
            for r, i in enumerate(rows):
                logits[i] = out[r, 1 : len(segments[i]) - 1]  # without [CLS] and [SEP]
        step = self.params.max_length - 2 - self.params.stride
        results, k = [], 0
        for note in range(len(texts)):
            windows = []
            while k < len(segments) and segments[k].note_index == note:
                windows.append(k)
                k += 1
            ids = np.array([t for w in windows for t in segments[w].input_ids[1:-1]], dtype=np.int64)
            offs = np.array([o for w in windows for o in segments[w].offsets[1:-1]], dtype=np.int64).reshape(-1, 2)
            n = (len(windows) - 1) * step + len(segments[windows[-1]]) - 2
            best = np.full(n, -1)
            tags = np.zeros(n, dtype=np.int64)
            note_ids = np.zeros(n, dtype=np.int64)
            note_offs = np.zeros((n, 2), dtype=np.int64)
            pos = 0
            for j, w in enumerate(windows):  # each piece from the window where it is farthest from an edge
                length = len(segments[w]) - 2
                at = np.arange(length)
                margin = np.minimum(at, length - 1 - at)
                where = j * step + at
                take = margin > best[where]
                best[where[take]] = margin[take]
                tags[where[take]] = logits[w].argmax(-1)[take]
                note_ids[where] = ids[pos : pos + length]
                note_offs[where] = offs[pos : pos + length]
                pos += length
            results.append((note_ids, note_offs, tags))
        return results

    def entities(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        """Per text, (start, end, label) from BIO tags on words (a word = a piece and its "##" continuations)."""
        out = []
        for ids, offs, tags in self.tag_ids(texts):
            found: list[list] = []
            open_label = None
            for i in range(len(ids)):
                if self.continuation[ids[i]] and i > 0:
                    if open_label is not None:
                        found[-1][1] = int(offs[i][1])
                    continue
                tag = self.tags[tags[i]]
                if tag == "O":
                    open_label = None
                    continue
                prefix, label = tag.split("-", 1)
                if prefix == "B" or label != open_label:  # an I- of another label starts its own entity
                    found.append([int(offs[i][0]), int(offs[i][1]), label])
                    open_label = label
                else:
                    found[-1][1] = int(offs[i][1])
            out.append([tuple(f) for f in found])
        return out


class TransformerRecognizer(LearnedRecognizer):
    def __init__(self, model_dir: Path | None = None, lexicons: Lexicons | None = None) -> None:
        self.tagger = TransformerTagger(model_dir)
        super().__init__("DeidTransformerRecognizer", lexicons)

    def entities(self, text: str) -> list[tuple[int, int, str]]:
        return self.tagger.entities([text])[0]
