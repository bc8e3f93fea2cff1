"""Config -> model. One place that knows which class each ``CoderConfig.architecture`` names."""

from __future__ import annotations

import logging

from tokenizers import Tokenizer
from torch import nn
from transformers import BertConfig, BertModel

from schemas.labels import LabelSpace
from schemas.text import PAD
from trainer.models.bert_cls import BertCLS
from trainer.models.bert_xml import BertXML
from trainer.models.bigru_attention import BiGRUAttention, embeddings_from_encoder
from trainer.models.config import CoderConfig
from trainer.models.label_init import init_label_vectors_from_descriptions

log = logging.getLogger(__name__)


def assemble_coder(config: CoderConfig, n_codes: int, encoder: BertModel | None, pad_id: int = 0) -> nn.Module:
    """The architecture's module around an encoder (randomly initialised head; no pretrained weights read)."""
    if config.architecture == "bert-xml":
        return BertXML(encoder, n_codes, config.xml_hidden, config.code_chunk, config.checkpoint_chunks, config.code_bias)
    if config.architecture == "bert-cls":
        return BertCLS(encoder, n_codes)
    if config.architecture == "bigru-attention":
        if not config.vocab_size:
            raise ValueError("bigru-attention needs config.vocab_size")
        return BiGRUAttention(config.vocab_size, n_codes, config.embedding_dim, config.gru_hidden, config.attention_heads, config.attention_dim, pad_id)
    raise ValueError(f"{config.architecture!r} is not a torch architecture")


def skeleton_coder(config: CoderConfig, n_codes: int, encoder_config: BertConfig | None, pad_id: int = 0) -> nn.Module:
    """The model's shape only, for loading saved weights into (``load_finetuned``)."""
    encoder = BertModel(encoder_config, add_pooling_layer=False) if encoder_config is not None else None
    return assemble_coder(config, n_codes, encoder, pad_id)


def load_pretrained_encoder(name: str, tokenizer: Tokenizer, max_positions: int | None) -> BertModel:
    from trainer.encoder import PRESETS, load_encoder  # presets (random weights) or pretrained directories

    if name in PRESETS:
        log.warning("encoder %r is a size preset with RANDOM weights: pass a pretrained model directory (or 'minilm') for real results", name)
    encoder = load_encoder(name, vocab_size=tokenizer.get_vocab_size(), max_positions=max_positions)
    encoder.pooler = None  # BERT's NSP pooler is unused by every coder here (and would idle under DDP)
    # load_encoder checked the vocabulary size and extended positions as needed
    return encoder


def build_coder(config: CoderConfig, labels: LabelSpace, tokenizer: Tokenizer) -> tuple[nn.Module, CoderConfig]:
    """A new coder for fine-tuning: pretrained encoder + initialised head. Returns the config completed
    with what a run directory needs to rebuild the model (vocab_size)."""
    pad_id = tokenizer.token_to_id(PAD)
    config = config.with_(vocab_size=tokenizer.get_vocab_size())
    if config.architecture in ("bert-xml", "bert-cls"):
        encoder = load_pretrained_encoder(config.encoder, tokenizer, config.max_length)
        model = assemble_coder(config, len(labels), encoder, pad_id)
        if config.architecture == "bert-xml" and config.label_init == "semantic":
            init_label_vectors_from_descriptions(model.xml.label_vectors, encoder, tokenizer, labels)
        return model, config
    if config.architecture == "bigru-attention":
        model = assemble_coder(config, len(labels), None, pad_id)
        if config.embedding_init == "encoder" and config.encoder:
            table = load_pretrained_encoder(config.encoder, tokenizer, None).embeddings.word_embeddings.weight
            model.embeddings.weight.data.copy_(embeddings_from_encoder(table, config.embedding_dim))
            log.info("bi-GRU word embeddings initialised from %s's input embeddings (PCA to %d-d)", config.encoder, config.embedding_dim)
        return model, config
    raise ValueError(f"{config.architecture!r} is not a torch architecture (logreg is fitted by trainer.finetune.train)")
