"""Encoders: typed size presets (paper Table 1), building/loading BERTs, extending position embeddings.

API for other parts of the trainer::

    from trainer.encoder import load_encoder, load_hf_tokenizer, encoder_config, PRESETS
    model = load_encoder("small", vocab_size=tok.vocab_size)          # fresh, random (BertModel)
    model = load_encoder("runs/pretrain/model", max_positions=1024)   # saved (also a BertForMaskedLM dir)
    model = load_encoder("minilm", max_positions=1024)                # off-the-shelf MiniLM, 512 -> 1,024
    tok = load_hf_tokenizer("runs/pretrain/model")                     # PreTrainedTokenizerFast
    # the raw `tokenizers.Tokenizer` for segmentation: schemas.text.load_tokenizer(dir)
"""

from trainer.encoder.config import MIN_VOCAB_SIZE, PRESETS, EncoderConfig, encoder_config
from trainer.encoder.load import MINILM, build_from_config, load_encoder, load_hf_tokenizer, load_masked_lm, minilm_dir, resolve_model_dir, resolve_tokenizer
from trainer.encoder.positions import extend_position_embeddings, sinusoidal_positions

__all__ = [
    "resolve_tokenizer",
    "MIN_VOCAB_SIZE", "MINILM", "PRESETS", "EncoderConfig", "build_from_config", "encoder_config",
    "extend_position_embeddings", "sinusoidal_positions", "load_encoder", "load_hf_tokenizer", "load_masked_lm", "minilm_dir", "resolve_model_dir",
]
