"""Semantic label initialisation (paper 3.3): l_j starts as the encoder's embedding of code j's description.

"Embedding" here means the encoder's OUTPUT states (last layer), averaged over the description's word
pieces ([CLS]/[SEP] excluded), not the input word-piece embeddings. Why: l_j is compared with h_i, the
last-layer states, by a dot product (eq. 2), so it must live in that space from the first step; input
embeddings live before the 12 transformer layers and their final LayerNorm, and a description's mean input
embedding is a bag of word pieces that ignores how the encoder composes "type 2 diabetes mellitus".
"""

from __future__ import annotations

import logging

import torch
from tokenizers import Tokenizer
from transformers import BertModel

from schemas.labels import LabelSpace
from schemas.model_repo import SegmentationParams
from schemas.text import PAD, pad_batch, segment_notes

log = logging.getLogger(__name__)


@torch.no_grad()
def description_embeddings(encoder: BertModel, tokenizer: Tokenizer, descriptions: tuple[str, ...] | list[str], max_length: int = 64, batch_size: int = 64) -> torch.Tensor:
    """Mean last-layer encoder state over each description's word pieces: [len(descriptions), hidden]."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    params = SegmentationParams(max_length=max_length)
    segments = segment_notes(list(descriptions), tokenizer, params)
    first = {}
    for seg in segments:  # a description longer than max_length keeps its first window
        first.setdefault(seg.note_index, seg)
    ordered = [first[j] for j in range(len(descriptions))]
    pad_id = tokenizer.token_to_id(PAD)
    out = torch.empty(len(descriptions), encoder.config.hidden_size)
    no_tokens = 0
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        ids, mask = pad_batch(batch, pad_id, multiple=8)
        ids_t, mask_t = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
        states = encoder(input_ids=ids_t, attention_mask=mask_t).last_hidden_state.float()
        words = mask_t.clone()
        words[:, 0] = 0  # [CLS]
        lengths = mask_t.sum(dim=1)
        words[torch.arange(len(batch), device=device), lengths - 1] = 0  # [SEP]
        empty = words.sum(dim=1) == 0
        no_tokens += int(empty.sum())
        words[empty] = mask_t[empty]  # nothing but specials: fall back to them rather than a zero vector
        weights = words.unsqueeze(-1).float()
        out[start : start + len(batch)] = ((states * weights).sum(dim=1) / weights.sum(dim=1)).cpu()
    if no_tokens:
        log.warning("%d code descriptions have no word pieces; their label vectors use [CLS]/[SEP]", no_tokens)
    encoder.train(was_training)
    return out


def init_label_vectors_from_descriptions(label_vectors: torch.nn.Parameter, encoder: BertModel, tokenizer: Tokenizer, labels: LabelSpace) -> None:
    """Overwrite l_j (rows of ``label_vectors``) with the semantic initialisation, in place."""
    if label_vectors.shape[0] != len(labels):
        raise ValueError(f"{label_vectors.shape[0]} label vectors but {len(labels)} codes in the label space")
    max_length = min(64, encoder.config.max_position_embeddings)
    vectors = description_embeddings(encoder, tokenizer, labels.descriptions, max_length=max_length)
    with torch.no_grad():
        label_vectors.copy_(vectors.to(label_vectors.device, label_vectors.dtype))
