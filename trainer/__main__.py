"""``python -m trainer COMMAND``: every step from raw notes to a Triton model repository."""

import sys

from schemas.cli import Command, main

COMMANDS = [
    Command("prepare", "trainer.data.prepare_cli", "import notes (CodiEsp, MTSamples, FHIR, JSONL), build the label space, split, report statistics"),
    Command("synthetic", "trainer.data.synthetic_cli", "write seeded synthetic clinical notes with known ICD-10-CM codes and planted PHI spans"),
    Command("codes", "trainer.data.codes_cli", "look up, normalise and validate ICD-10-CM codes against the 2026 code set"),
    Command("vocab", "trainer.vocab_cli", "train the EHR WordPiece vocabulary and compare out-of-vocabulary words with a general BERT"),
    Command("pretrain", "trainer.pretrain_cli", "pretrain a BERT encoder with masked-language modelling (from scratch or continued)"),
    Command("extend-positions", "trainer.extend_positions_cli", "extend a local BERT's position embeddings (e.g. MiniLM 512 -> 1,024)"),
    Command("fill-mask", "trainer.fill_mask_cli", "print a pretrained encoder's top predictions for [MASK] tokens"),
    Command("finetune", "trainer.finetune_cli", "fine-tune an ICD coder (BERT-XML, BERT [CLS], bi-GRU attention, logistic regression)"),
    Command("evaluate", "trainer.evaluate_cli", "evaluate a fine-tuned model as the paper does (AUC, F1, P@k, MAP, frequency bins)"),
    Command("explain", "trainer.explain_cli", "render a note's XML attention for a code as HTML and the encoder's attention heads as PNG"),
    Command("export", "trainer.export_cli", "export a fine-tuned model to a Triton model repository (ONNX, config.pbtxt, metadata)"),
    Command("demo", "trainer.demo", "the whole loop on one machine: data, model, export, Kafka, Triton, Redis, engine"),
    Command("bench", "trainer.bench_cli", "benchmarks: the paper's tables on public data, and speed"),
]

if __name__ == "__main__":
    sys.exit(main("python -m trainer", __doc__, COMMANDS))
