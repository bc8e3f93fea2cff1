"""The description scorer (trainer.describe, schemas.descriptions, schemas.fusion): sentences, the catalogue,
known codes found in a few notes by their titles and inclusion terms, the fusion by hand, selection."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.descriptions import NoteDescriptions, note_sentences, per_note
from schemas.fusion import Fusion, Neighbours, fuse_note, note_embedding
from schemas.text import sentence_spans
from trainer.describe.catalogue import build_catalogue


def test_sentence_spans_keep_offsets_into_the_note():
    text = "Hypertension; type 2 diabetes.  Seen in clinic today.\nPlan: [DATE] follow-up.\n\n" + "word " * 80
    spans = sentence_spans(text, max_chars=120)
    pieces = [text[s:e] for s, e in spans]
    assert pieces[:4] == ["Hypertension;", "type 2 diabetes.", "Seen in clinic today.", "Plan: [DATE] follow-up."]
    assert all(len(p) <= 120 and p == p.strip() for p in pieces) and len(pieces) == 8  # 400 chars of words cut on spaces
    assert sentence_spans("") == [] and sentence_spans("ok") == []


def test_catalogue_scopes_and_terms():
    labels = ("E11.9", "T81.4")  # T81.4 is not billable: still a candidate, as the label space needs
    labelled = build_catalogue(labels, scope="labels")
    assert labelled.codes == labels and labelled.displays[0] == "Type 2 diabetes mellitus without complications"
    siblings = build_catalogue(labels, scope="categories")
    assert {"E11.65", "E11.9", "T81.4", "T81.40XA"} <= set(siblings.codes) and not any(c.startswith("I10") for c in siblings.codes)
    r52 = build_catalogue(("R52",), scope="labels")
    assert "Pain NOS" in r52.terms and all(j == 0 for j in r52.term_code)  # inclusion terms describe the code too
    with pytest.raises(ValueError, match="scope"):
        build_catalogue((), scope="everything")


def test_per_note_keeps_each_codes_best_sentence():
    from schemas.text import Segment

    sentences = [type("S", (), {"note_index": i})() for i in (0, 0, 1)]
    codes = np.array([[3, 5], [5, 7], [3, 2]])
    sims = np.array([[0.9, 0.4], [0.8, 0.3], [0.5, 0.1]], dtype=np.float32)
    first, second = per_note(sentences, codes, sims, 3)[:2]
    assert first.codes.tolist() == [3, 5, 7] and first.similarity.tolist() == pytest.approx([0.9, 0.8, 0.3]) and first.sentence.tolist() == [0, 1, 1]
    assert second.codes.tolist() == [2, 3] and second.sentence.tolist() == [2, 2]
    assert per_note(sentences, codes, sims, 3)[2].codes.size == 0  # a note without sentences
    assert Segment  # (imported for the type only)


def test_fusion_by_hand():
    fusion = Fusion(model_weight=1.0, neighbours_weight=0.5, description_weight=2.0, description_floor=0.3, example_weight=1.0, example_floor=0.5, threshold=0.4)
    descriptions = NoteDescriptions(np.array([0, 2]), np.array([0.5, 0.8], np.float32), np.array([4, 6]))
    examples = NoteDescriptions(np.array([2, 3]), np.array([0.9, 0.4], np.float32), np.array([5, 1]))
    knn = np.array([0.0, 0.2, 0.0, 0.0], np.float32)
    fused = fuse_note(fusion, 4, np.array([1, 2]), np.array([0.3, 0.1], np.float32), descriptions, examples, knn)
    # code 0: 2*(0.5-0.3)=0.4 ; code 1: 0.3 + 0.5*0.2 = 0.4 ; code 2: 0.1 + 2*(0.8-0.3) + 1*(0.9-0.5) = 1.5 -> 1 ; code 3: 0.4 < floor 0.5 -> 0
    assert fused.scores.tolist() == pytest.approx([0.4, 0.4, 1.0, 0.0])
    assert fused.sentence.tolist() == [4, -1, 6, -1]  # code 2: its description part (1.0) beats its example part (0.4)


def test_neighbours_vote_with_their_codes():
    embeddings = np.array([[1, 0], [0.6, 0.8], [0, 1]], np.float32)
    neighbours = Neighbours(embeddings, np.array([0, 2, 3, 4]), np.array([0, 1, 1, 2]))
    votes = neighbours.scores(np.array([1, 0], np.float32), k=2, n_candidates=3)  # nearest: note 0 (1.0), note 1 (0.6)
    assert votes.tolist() == pytest.approx([1 / 1.6, 1.0, 0.0])
    assert note_embedding(np.zeros((0, 2))) is None and note_embedding(np.array([[3.0, 4.0]])).tolist() == pytest.approx([0.6, 0.8])


@pytest.fixture(scope="module")
def small_scorer():
    """The real description scorer (all-MiniLM-L6-v2) over a handful of candidate codes, no training data."""
    import torch

    from schemas.text import load_tokenizer
    from trainer.describe.build import build_scorer, term_matrix
    from trainer.describe.model import SentenceEncoder, load_sentence_encoder
    from trainer.encoder import minilm_dir

    torch.set_num_threads(1)
    catalogue = build_catalogue(("I10", "E11.9", "N28.1", "K35.80", "J18.9", "R52", "N20.0", "F32.A", "I48.91"), scope="labels")
    encoder = SentenceEncoder(load_sentence_encoder())
    tokenizer = load_tokenizer(minilm_dir())
    terms = term_matrix(catalogue, encoder, tokenizer, cache_dir=None, progress=False)
    scorer = build_scorer(encoder, terms, catalogue, np.zeros((0, terms.shape[1]), np.float32), np.zeros(0, np.int64), top_k=3)
    return catalogue, scorer, tokenizer


def test_description_scorer_finds_known_codes_with_their_sentence(small_scorer):
    from trainer.describe.build import score_with

    catalogue, scorer, tokenizer = small_scorer
    notes = {
        "I10": "Follow-up visit. The patient has long-standing high blood pressure treated with enalapril.",
        "K35.80": "She presented with right lower quadrant pain. Acute appendicitis was confirmed at surgery.",
        "N28.1": "Ultrasound showed a simple cyst of the left kidney measuring 3 cm. No hydronephrosis.",
        "N20.0": "CT revealed a 6 mm stone in the right kidney. He was referred to urology.",
        "I48.91": "ECG showed an irregularly irregular rhythm consistent with atrial fibrillation.",
    }
    scored = score_with(scorer, list(notes.values()), tokenizer, progress=False)
    for i, (code, text) in enumerate(notes.items()):
        hits = scored.descriptions[i]
        best = int(np.argmax(hits.similarity))
        assert catalogue.codes[hits.codes[best]] == code, (code, [catalogue.codes[c] for c in hits.codes])
        sentence = scored.sentences[hits.sentence[best]]
        assert sentence.note_index == i and code != "I10" or "high blood pressure" in text[sentence.start : sentence.end]
        assert scored.embeddings[i] is not None and abs(float(np.linalg.norm(scored.embeddings[i])) - 1) < 1e-5


def test_selection_prefers_the_informative_term():
    """On notes whose gold codes only the descriptions can rank, selection gives the description term weight."""
    from trainer.describe.build import ScoredNotes
    from trainer.describe.select import Components, f1_threshold, select_fusion

    codes = ("A00", "B00", "C00")
    hits = [NoteDescriptions(np.array([0, 1, 2]), np.array(s, np.float32), np.array([0, 0, 0])) for s in ([0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.1, 0.7])]
    empty = NoteDescriptions(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64))
    scored = ScoredNotes(hits, [empty] * 3, [None] * 3, [])
    components = Components(codes, scored, Neighbours(np.zeros((0, 2), np.float32), np.array([0]), np.zeros(0, np.int64)))
    gold = [("A00",), ("B00",), ("C00", "Z99")]
    fusion = select_fusion(components, gold, "test notes", "descriptions_only")
    assert fusion.description_weight > 0 and fusion.model_weight == 0 and fusion.selection["official_map"] == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-4)
    threshold, f1 = f1_threshold(components.fused(fusion), gold, codes)
    assert f1 == pytest.approx(2 * 3 / (3 + 4)) and 0 < threshold < 1  # 3 of 4 gold codes at the best cut (Z99 is no candidate)


def test_the_served_selection_is_never_below_the_one_without_the_classifier():
    """A classifier that ranks every note's codes backwards: the served combination, started again from the weights
    chosen without it, keeps at least their MAP on the selection notes (a single ascent from START need not)."""
    from trainer.describe.build import ScoredNotes
    from trainer.describe.select import Components, select_fusion

    codes = ("A00", "B00", "C00")
    hits = [NoteDescriptions(np.array([0, 1, 2]), np.array(s, np.float32), np.array([0, 0, 0])) for s in ([0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.1, 0.7])]
    empty = NoteDescriptions(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64))
    probs = np.array([[0.0, 0.9, 0.95], [0.95, 0.0, 0.9], [0.9, 0.95, 0.0]], np.float32)
    components = Components(codes, ScoredNotes(hits, [empty] * 3, [None] * 3, []),
                            Neighbours(np.zeros((0, 2), np.float32), np.array([0]), np.zeros(0, np.int64)), probs, np.arange(3))
    gold = [("A00",), ("B00",), ("C00",)]
    without = select_fusion(components, gold, "test notes", "without_classifier")
    assert without.selection["official_map"] == pytest.approx(1.0)
    # no ascent steps (rounds=0): what is left is the choice between the two starts
    assert select_fusion(components, gold, "test notes", "served", rounds=0).selection["official_map"] < 1.0  # START trusts the classifier
    served = select_fusion(components, gold, "test notes", "served", rounds=0, also_from=without)
    assert served.selection["official_map"] == pytest.approx(1.0) and served.model_weight == 0.0
    assert select_fusion(components, gold, "test notes", "served", also_from=without).selection["official_map"] >= without.selection["official_map"] - 1e-9


def test_note_sentences_tokenise_with_offsets(small_scorer):
    _, _, tokenizer = small_scorer
    text = "No fever. Mild anemia; ferritin low."
    sentences = note_sentences([text, ""], tokenizer)
    assert [text[s.start : s.end] for s in sentences] == ["No fever.", "Mild anemia;", "ferritin low."]
    assert all(s.note_index == 0 and s.segment.input_ids[0] == tokenizer.token_to_id("[CLS]") for s in sentences)
    first = sentences[0].segment
    assert text[first.offsets[1][0] : first.offsets[1][1]].lower() == "no"  # offsets point into the NOTE, not the sentence


def test_codes_outside_the_label_space_get_their_own_threshold():
    """By hand: with A00 (the classifier's) cut at 0.5, the outside codes' best cut takes both outside gold codes."""
    from schemas.fusion import Fusion
    from trainer.describe.select import outside_threshold

    codes = ("A00", "B00", "C00")
    scores = np.array([[0.9, 0.3, 0.1], [0.2, 0.05, 0.25]], np.float32)
    gold = [("A00", "B00"), ("C00",)]
    cut, f1 = outside_threshold(scores, gold, codes, np.array([0]), threshold=0.5)
    assert cut == pytest.approx(0.175) and f1 == pytest.approx(1.0)
    # outside scores that only add false positives: no cut helps, 1.0 (never below the maximum score)
    cut, f1 = outside_threshold(scores, [("A00",), ()], codes, np.array([0]), threshold=0.5)
    assert cut == 1.0 and f1 == pytest.approx(1.0)
    limits = Fusion(threshold=0.5, outside_threshold=0.175).thresholds(3, np.array([0]))
    assert limits.tolist() == pytest.approx([0.5, 0.175, 0.175])
    assert Fusion(threshold=0.4).thresholds(3, np.array([0])).tolist() == pytest.approx([0.4] * 3)


def test_repeated_sentences_are_scored_once_with_the_same_outputs(small_scorer):
    from trainer.describe.build import score_with

    _, scorer, tokenizer = small_scorer
    sentence = "Ultrasound showed a simple cyst of the left kidney."
    alone = score_with(scorer, [sentence], tokenizer, progress=False)
    repeated = score_with(scorer, [f"{sentence} Acute appendicitis was confirmed. {sentence}", sentence], tokenizer, progress=False)
    assert repeated.descriptions[1].codes.tolist() == alone.descriptions[0].codes.tolist()
    assert repeated.descriptions[1].similarity == pytest.approx(alone.descriptions[0].similarity, abs=1e-5)
    assert repeated.embeddings[1] == pytest.approx(alone.embeddings[0], abs=1e-5)


def test_export_parity_allows_ties_cut_by_the_top_k(small_scorer, tmp_path):
    """The same example sentence serving two codes gives equal similarities; where such a tie straddles the
    top-k cut, onnxruntime and PyTorch may keep either code, and the parity check must not call that a defect."""
    from trainer.describe.build import build_scorer
    from trainer.describe.fuse import DescriptionModel
    from trainer.export.descriptions import check_scorer_parity, export_scorer_onnx

    catalogue, scorer, tokenizer = small_scorer
    terms = scorer.terms.numpy()
    examples = np.repeat(terms, 2, axis=0)  # every example twice, for two different codes
    codes = np.arange(len(examples)) % len(catalogue.codes)
    tied = build_scorer(scorer.encoder, terms, catalogue, examples, codes, top_k=3)  # the 3rd best ties with the 4th, cut off
    model = DescriptionModel(catalogue, tied, None, tokenizer, None)
    export_scorer_onnx(model, tmp_path / "scorer.onnx")
    assert check_scorer_parity(model, tmp_path / "scorer.onnx") < 1e-4


def test_contrastive_loss_masks_repeated_codes():
    import torch

    from trainer.describe.tune import contrastive_loss

    eye = torch.eye(2)
    assert float(contrastive_loss(eye, eye, torch.tensor([0, 1]), scale=20.0)) < 1e-6  # each sentence next to its own term
    assert float(contrastive_loss(eye, eye.flip(0), torch.tensor([0, 1]), scale=20.0)) > 10  # next to the other's
    same = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1]]), dim=-1)
    # two sentences of one code: neither is the other's negative, so the loss is that of two separate pairs (~0)
    assert float(contrastive_loss(same, same, torch.tensor([3, 3]), scale=20.0)) < 1e-6


def test_tuning_moves_sentences_towards_their_codes_and_survives_a_reload(tmp_path):
    """A few steps on abbreviated sentences (what notes hold) and their codes' titles: each sentence's cosine to its
    own code rises against the other codes'; the saved encoder embeds exactly as the tuned one."""
    import torch

    from schemas.text import PAD, load_tokenizer, pad_batch
    from trainer.describe.build import text_segments
    from trainer.describe.model import SentenceEncoder, load_sentence_encoder
    from trainer.describe.tune import TuneOptions, save_encoder, tune_encoder
    from trainer.encoder import minilm_dir

    torch.set_num_threads(1)
    catalogue = build_catalogue(("R06.02", "I10", "E11.9", "R11.2", "I48.91", "J44.1"), scope="labels")
    sentences = {"R06.02": "pt c/o SOB on exertion", "I10": "known HTN, on lisinopril", "E11.9": "T2DM, diet controlled",
                 "R11.2": "N/V x2 days", "I48.91": "ECG: AF with RVR", "J44.1": "AECOPD, nebs given"}
    index = {c: j for j, c in enumerate(catalogue.codes)}
    pairs = [(text, index[code]) for code, text in sentences.items()]
    tokenizer = load_tokenizer(minilm_dir())
    encoder = SentenceEncoder(load_sentence_encoder())

    @torch.no_grad()
    def margins(model: SentenceEncoder) -> np.ndarray:
        def embed(texts):
            ids, mask = pad_batch(text_segments(texts, tokenizer), tokenizer.token_to_id(PAD))
            return model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        similarity = embed(list(sentences.values())) @ embed([catalogue.terms[catalogue.term_code.index(index[c])] for c in sentences]).T
        return np.diag(similarity) - (similarity.sum(axis=1) - np.diag(similarity)) / (len(sentences) - 1)

    before = margins(encoder)
    tuning = tune_encoder(encoder, pairs * 4, catalogue, tokenizer, TuneOptions(epochs=3, batch_size=6, learning_rate=1e-4), "six sentences", progress=False)
    after = margins(encoder)
    assert tuning.steps == 12 and tuning.last_loss < tuning.first_loss
    assert after.mean() > before.mean() + 0.05, (before, after)
    save_encoder(encoder, tmp_path / "encoder")
    reloaded = SentenceEncoder(load_sentence_encoder(tmp_path / "encoder"))
    assert np.allclose(margins(reloaded), after, atol=1e-5)
