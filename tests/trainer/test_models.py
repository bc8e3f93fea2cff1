"""The coders' structure: XML attention masking and chunking, semantic label init, segment max, run-dir round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from schemas.labels import LabelSpace
from schemas.model_repo import SegmentationParams, Thresholds, TrainingSummary
from schemas.text import PAD, load_tokenizer, max_over_segments, pad_batch, segment_notes
from trainer.finetune.data import segment_max
from trainer.models import TABLE2_PRESETS, CoderConfig, load_finetuned
from trainer.models.bert_cls import BertCLS
from trainer.models.bert_xml import BertXML
from trainer.models.bigru_attention import embeddings_from_encoder
from trainer.models.predict import segment_logits
from trainer.models.registry import build_coder
from trainer.models.run_dir import save_model_files, save_run_metadata

LABELS = LabelSpace(
    codes=("I10", "E11.9", "J44.9", "N18.30", "K21.9"),
    descriptions=("Essential (primary) hypertension", "Type 2 diabetes mellitus without complications",
                  "Chronic obstructive pulmonary disease, unspecified", "Chronic kidney disease, stage 3 unspecified",
                  "Gastro-esophageal reflux disease without esophagitis"),
    code_set_release="ICD-10-CM 2026",
)
TEXTS = ["Hypertension, well controlled on lisinopril. " * 3, "Type 2 diabetes mellitus and CKD stage 3; GERD. " * 12]


def small_encoder(vocab_size: int = 120) -> BertModel:
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    return BertModel(config, add_pooling_layer=False).eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    ids = torch.randint(5, 120, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 12:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    return ids, mask


def test_padding_gets_exactly_zero_xml_attention():
    model = BertXML(small_encoder(), n_codes=7, code_chunk=3).eval()
    ids, mask = padded_batch()
    with torch.no_grad():
        out = model(ids, mask)
    assert out.logits.shape == (3, 7) and out.token_attention.shape == (3, 7, 20)
    assert torch.all(out.token_attention[mask[:, None, :].expand(-1, 7, -1) == 0] == 0.0)  # exactly, not ~0
    torch.testing.assert_close(out.token_attention.sum(dim=-1), torch.ones(3, 7))


def test_code_chunks_and_checkpointing_change_nothing():
    torch.manual_seed(1)
    model = BertXML(small_encoder(), n_codes=7, code_chunk=1000, checkpoint_chunks=False)
    ids, mask = padded_batch()
    model.eval()
    with torch.no_grad():
        whole = model(ids, mask)
        model.xml.code_chunk = 2
        chunked = model(ids, mask)
    torch.testing.assert_close(whole.logits, chunked.logits)
    torch.testing.assert_close(whole.token_attention, chunked.token_attention)
    grads = []
    for checkpointed in (False, True):
        model.train()
        model.encoder.eval()  # no dropout: both passes must see the same function
        model.xml.checkpoint_chunks = checkpointed
        model.zero_grad()
        model(ids, mask).logits.sum().backward()
        grads.append(model.xml.label_vectors.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_bert_cls_has_no_token_attention():
    out = BertCLS(small_encoder(), n_codes=4).eval()(*padded_batch())
    assert out.logits.shape == (3, 4) and out.token_attention is None


def test_segment_max_matches_the_shared_numpy_max_and_routes_the_gradient():
    logits = torch.tensor([[0.1, 2.0], [0.7, -1.0], [0.3, 0.5], [-2.0, 4.0]], requires_grad=True)
    owner = torch.tensor([0, 0, 1, 1])
    notes = segment_max(logits, owner, 2)
    np.testing.assert_allclose(notes.detach().numpy(), max_over_segments(logits.detach().numpy(), owner.tolist(), 2))
    notes.sum().backward()
    # only the segment holding each note's max gets gradient, per code
    assert logits.grad.tolist() == [[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]


def test_semantic_label_init_is_the_mean_encoder_state_of_the_description(tiny_tokenizer_dir):
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    torch.manual_seed(0)
    model, config = build_coder(CoderConfig(architecture="bert-xml", encoder="tiny", max_length=128), LABELS, tokenizer)
    encoder = model.encoder.eval()
    for j, description in enumerate(LABELS.descriptions):
        pieces = tokenizer.encode(description, add_special_tokens=False).ids
        ids = torch.tensor([[tokenizer.token_to_id("[CLS]"), *pieces, tokenizer.token_to_id("[SEP]")]])
        with torch.no_grad():
            states = encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
        torch.testing.assert_close(model.xml.label_vectors[j].detach(), states[1:-1].mean(dim=0), rtol=1e-4, atol=1e-5)
    random_model, _ = build_coder(config.with_(label_init="random"), LABELS, tokenizer)
    assert not torch.allclose(random_model.xml.label_vectors, model.xml.label_vectors)


@pytest.mark.parametrize("architecture", ["bert-xml", "bert-cls", "bigru-attention"])
def test_load_finetuned_round_trip_gives_identical_outputs(architecture, tiny_tokenizer_dir, tmp_path):
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    coder = CoderConfig(architecture=architecture, encoder="tiny", max_length=64, embedding_dim=16, gru_hidden=8, attention_heads=3, attention_dim=8)
    torch.manual_seed(0)
    model, coder = build_coder(coder, LABELS, tokenizer)
    model.eval()
    segmentation = SegmentationParams(max_length=64)
    thresholds = Thresholds(global_threshold=0.3, per_code={"I10": 0.6})
    save_model_files(tmp_path, model, coder)
    save_run_metadata(tmp_path, LABELS, thresholds, segmentation, TrainingSummary(dataset="test"), tiny_tokenizer_dir / "tokenizer.json")
    loaded = load_finetuned(tmp_path)
    assert not loaded.training and loaded.architecture == architecture and loaded.config == coder
    assert loaded.labels == LABELS and loaded.thresholds == thresholds and loaded.segmentation == segmentation
    segments = segment_notes(TEXTS, tokenizer, segmentation)
    assert len(segments) > len(TEXTS)  # the second note needs several segments
    ids, mask = (torch.from_numpy(a) for a in pad_batch(segments, tokenizer.token_to_id(PAD)))
    with torch.no_grad():
        before, after = model(ids, mask), loaded(ids, mask)
    torch.testing.assert_close(before.logits, after.logits, rtol=0, atol=0)
    if architecture == "bert-xml":
        torch.testing.assert_close(before.token_attention, after.token_attention, rtol=0, atol=0)
    # scoring (evaluation, dev selection) switches the attention output off only while it runs
    scores = segment_logits(loaded, segments, tokenizer.token_to_id(PAD), 64, batch_size=2)
    np.testing.assert_allclose(scores, after.logits.numpy(), rtol=1e-5, atol=1e-6)
    assert (loaded(ids, mask).token_attention is not None) == (architecture == "bert-xml")


def test_bigru_embeddings_from_encoder_keep_the_principal_directions():
    torch.manual_seed(0)
    table = torch.randn(50, 3) @ torch.randn(3, 12)  # rank 3
    reduced = embeddings_from_encoder(table, 6)
    assert reduced.shape == (50, 6)
    # the first 3 columns span the table's (centred) row space: reconstructing it from them is exact
    centred = table - table.mean(dim=0)
    coef = torch.linalg.lstsq(reduced[:, :3], centred).solution
    torch.testing.assert_close(reduced[:, :3] @ coef, centred, atol=1e-3, rtol=1e-3)


def test_coder_config_round_trip_and_table2_presets():
    for name, preset in TABLE2_PRESETS.items():
        assert CoderConfig.from_json(preset.to_json()) == preset, name
    with pytest.raises(ValueError, match="unknown architecture"):
        CoderConfig(architecture="svm")
    with pytest.raises(ValueError, match="unknown fields"):
        CoderConfig.from_json('{"architecture": "bert-xml", "colour": "red"}')
