"""trainer.deid_transformer: BIO tags on the first word piece of each word, windows cut as the engine cuts notes."""

from __future__ import annotations

from engine.deid.recognizers.transformer import continuation_pieces
from schemas.model_repo import SegmentationParams
from schemas.text import load_tokenizer
from trainer.deid_model.corpus import TrainDoc
from trainer.deid_transformer.train import IGNORE, TAGS, windows
from trainer.encoder.load import minilm_dir


def test_tags_sit_on_first_pieces_and_follow_the_spans():
    tokenizer = load_tokenizer(minilm_dir() / "tokenizer.json")
    continuation = continuation_pieces(tokenizer)
    text = "Spoke with Babatunde Olatunji, then Ana Souza. Call 555-0199."
    doc = TrainDoc(text, ((11, 29, "NAME"), (36, 45, "NAME"), (52, 60, "PHONE")))
    (segment, tags), = windows([doc], tokenizer, SegmentationParams(max_length=64, stride=0), continuation)
    words = [(text[s:e], TAGS[t]) for (s, e), t in zip(segment.offsets, tags) if t != IGNORE]
    assert tags[0] == IGNORE and tags[-1] == IGNORE  # [CLS], [SEP]
    assert words == [("Spoke", "O"), ("with", "O"), ("Baba", "B-NAME"), ("Ol", "I-NAME"), (",", "O"), ("then", "O"),
                     ("Ana", "B-NAME"), ("Souza", "I-NAME"), (".", "O"), ("Call", "O"), ("555", "B-PHONE"), ("-", "I-PHONE"),
                     ("01", "I-PHONE"), (".", "O")]
    assert [t for (s, e), t in zip(segment.offsets, tags) if s < e].count(IGNORE) == 7  # "##tu", "##nde", "##at", ... unscored
