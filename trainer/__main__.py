"""``python -m trainer COMMAND``: every step from raw notes to a Triton model repository."""

import sys

from schemas.cli import Command, main
from schemas.threads import AUTO

COMMANDS = [
    Command("prepare", "trainer.cli.prepare", "import notes (CodiEsp, MTSamples, FHIR, JSONL), build the label space, split, report statistics", threads=AUTO),
    Command("synthetic", "trainer.cli.synthetic", "write seeded synthetic clinical notes with known ICD-10-CM codes and planted PHI spans"),
    Command("codes", "trainer.cli.codes", "look up, normalise and validate ICD-10-CM codes against the 2026 code set"),
    Command("vocab", "trainer.cli.vocab", "train the EHR WordPiece vocabulary and compare out-of-vocabulary words with a general BERT", threads=AUTO),
    Command("pretrain", "trainer.cli.pretrain", "pretrain a BERT encoder with masked-language modelling (from scratch or continued)", threads=AUTO),
    Command("extend-positions", "trainer.cli.extend_positions", "extend a local BERT's position embeddings (e.g. MiniLM 512 -> 1,024)"),
    Command("fill-mask", "trainer.cli.fill_mask", "print a pretrained encoder's top predictions for [MASK] tokens", threads=AUTO),
    Command("finetune", "trainer.cli.finetune", "fine-tune an ICD coder (BERT-XML, BERT [CLS], bi-GRU attention, logistic regression)", threads=AUTO),
    Command("fuse", "trainer.cli.fuse", "add the description scorer (every billable code, titles + training examples) and choose the fusion on the selection split", threads=AUTO),
    Command("evaluate", "trainer.cli.evaluate", "evaluate a fine-tuned model as the paper does (AUC, F1, P@k, MAP, frequency bins)", threads=AUTO),
    Command("explain", "trainer.cli.explain", "render a note's XML attention for a code as HTML and the encoder's attention heads as PNG", threads=AUTO),
    Command("deid-model", "trainer.cli.deid_model", "train the PHI NER pipeline engine.deid ships (spaCy, CPU) and write its data card", threads=AUTO),
    Command("deid-transformer", "trainer.cli.deid_transformer", "fine-tune MiniLM for PHI token classification and write the ONNX recogniser engine.deid ships", threads="1"),
    Command("export", "trainer.cli.export", "export a fine-tuned model to a Triton model repository (ONNX, config.pbtxt, metadata)", threads=AUTO),
]

if __name__ == "__main__":
    sys.exit(main("python -m trainer", __doc__, COMMANDS))
