"""A small hand-built BERT-XML-shaped ONNX model in a real model-repository layout, for engine tests that must
not wait for training: a word-piece embedding "encoder" under the paper's multi-label attention (XML) head.

Each code's attention vector is the embedding of its keyword's word pieces (the paper also starts label
vectors from the encoder's embedding of the code description), so the model really attends to the keyword:
a note mentioning "hypertension" scores I10 high and the evidence points at that word. Same tensor names,
shapes and files as ``trainer export`` writes (``schemas.model_repo``); built with onnx.helper (no torch).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

from schemas.labels import LabelSpace
from schemas.model_repo import (
    ATTENTION_MASK,
    INPUT_IDS,
    METADATA_FILE,
    ONNX_FILE,
    OUTPUT_EVIDENCE_POSITIONS,
    OUTPUT_EVIDENCE_WEIGHTS,
    OUTPUT_PROBS,
    TOKENIZER_FILE,
    ModelMetadata,
    SegmentationParams,
    Thresholds,
    TrainingSummary,
    version_dir,
)
from schemas.phi import PLACEHOLDERS
from schemas.text import SPECIAL_TOKENS

# code -> (description, keyword word pieces the code attends to)
CODES = {
    "I10": ("Essential (primary) hypertension", ["hyper", "##tension"]),
    "E11.9": ("Type 2 diabetes mellitus without complications", ["diabetes"]),
    "J45.909": ("Unspecified asthma, uncomplicated", ["asthma"]),
    "J18.9": ("Pneumonia, unspecified organism", ["pneumonia"]),
    "G43.909": ("Migraine, unspecified, not intractable, without status migrainosus", ["migraine"]),
}
WORDS = "the patient has a history of and with no is was on for to in denies reports chest pain cough fever mg daily plan follow up".split()
HIDDEN = 64
EVIDENCE_TOP_K = 5


def build_tokenizer() -> Tokenizer:
    pieces = {p for _, kw in CODES.values() for p in kw}
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    punct = list(".,;:()[]/-+%'\"!?#&*<>=_")
    vocab_list = [*SPECIAL_TOKENS, *sorted(pieces), *WORDS, *chars, *punct, *(f"##{c}" for c in chars), *(f"##{p}" for p in punct)]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.add_tokens(list(PLACEHOLDERS))  # one token each, as the real vocabulary keeps them
    return tok


def build_onnx(tok: Tokenizer, seed: int = 0) -> onnx.ModelProto:
    """probs = sigmoid(w_c . sum_t a_ct e_t + b_c), a_c = softmax_t(u_c . e_t) over unmasked t (paper eq. 3-5)."""
    rng = np.random.default_rng(seed)
    vocab_size = tok.get_vocab_size()
    emb = (rng.standard_normal((vocab_size, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    label_vectors = np.stack([emb[[tok.token_to_id(p) for p in kw]].mean(axis=0) for _, kw in CODES.values()])
    u = (12.0 * label_vectors).T.astype(np.float32)  # [H, C] attention query per code
    w = (10.0 * label_vectors / np.linalg.norm(label_vectors, axis=1, keepdims=True) ** 2).astype(np.float32)  # [C, H]
    b = np.full((len(CODES),), -5.0, dtype=np.float32)
    inits = [
        numpy_helper.from_array(emb, "embeddings"),
        numpy_helper.from_array(u, "label_queries"),
        numpy_helper.from_array(w, "output_weights"),
        numpy_helper.from_array(b, "output_bias"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis_last"),
        numpy_helper.from_array(np.array([EVIDENCE_TOP_K], dtype=np.int64), "top_k"),
        numpy_helper.from_array(np.array(-1e4, dtype=np.float32), "neg_large"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
    ]
    nodes = [
        helper.make_node("Gather", ["embeddings", INPUT_IDS], ["tokens"]),  # [B,T,H]
        helper.make_node("MatMul", ["tokens", "label_queries"], ["scores"]),  # [B,T,C]
        helper.make_node("Cast", [ATTENTION_MASK], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["one", "mask_f"], ["inv_mask"]),
        helper.make_node("Mul", ["inv_mask", "neg_large"], ["mask_bias"]),
        helper.make_node("Unsqueeze", ["mask_bias", "axis_last"], ["mask_bias3"]),  # [B,T,1]
        helper.make_node("Add", ["scores", "mask_bias3"], ["masked_scores"]),
        helper.make_node("Softmax", ["masked_scores"], ["attention"], axis=1),  # over tokens
        helper.make_node("Transpose", ["attention"], ["attention_ct"], perm=[0, 2, 1]),  # [B,C,T]
        helper.make_node("MatMul", ["attention_ct", "tokens"], ["context"]),  # [B,C,H]
        helper.make_node("Mul", ["context", "output_weights"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis_last"], ["logits_raw"], keepdims=0),  # [B,C]
        helper.make_node("Add", ["logits_raw", "output_bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], [OUTPUT_PROBS]),
        helper.make_node("TopK", ["attention_ct", "top_k"], [OUTPUT_EVIDENCE_WEIGHTS, OUTPUT_EVIDENCE_POSITIONS], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "bert_xml_test",
        [helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT64, ["batch", "tokens"]), helper.make_tensor_value_info(ATTENTION_MASK, TensorProto.INT64, ["batch", "tokens"])],
        [
            helper.make_tensor_value_info(OUTPUT_PROBS, TensorProto.FLOAT, ["batch", len(CODES)]),
            helper.make_tensor_value_info(OUTPUT_EVIDENCE_POSITIONS, TensorProto.INT64, ["batch", len(CODES), EVIDENCE_TOP_K]),
            helper.make_tensor_value_info(OUTPUT_EVIDENCE_WEIGHTS, TensorProto.FLOAT, ["batch", len(CODES), EVIDENCE_TOP_K]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_model_repository(repository: Path, model_name: str = "bert_xml", version: int = 1, max_length: int = 64, thresholds: dict[str, float] | None = None) -> Path:
    """Write ``<repository>/<model_name>/<version>/{model.onnx, tokenizer.json, metadata.json}``; returns the version dir."""
    directory = version_dir(repository, model_name, version)
    directory.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    tok.save(str(directory / TOKENIZER_FILE))
    onnx.save(build_onnx(tok), str(directory / ONNX_FILE))
    metadata = ModelMetadata(
        model_name=model_name,
        version=version,
        architecture="bert-xml",
        created_at=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
        labels=LabelSpace(codes=tuple(CODES), descriptions=tuple(d for d, _ in CODES.values()), code_set_release="ICD-10-CM 2026"),
        thresholds=Thresholds(global_threshold=0.5, per_code=thresholds or {}),
        segmentation=SegmentationParams(max_length=max_length),
        deid_placeholders=PLACEHOLDERS,
        evidence_top_k=EVIDENCE_TOP_K,
        training=TrainingSummary(dataset="hand-built keyword-attention test model"),
    )
    (directory / METADATA_FILE).write_text(metadata.model_dump_json(indent=2), encoding="utf-8")
    return directory
