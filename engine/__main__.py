"""``python -m engine COMMAND``: the streaming ICD-10-CM coding service and its tools."""

import sys

from schemas.cli import Command, main

COMMANDS = [
    Command("run", "engine.run_cli", "serve the stream: DocumentReference from Kafka in, FHIR Condition suggestions out"),
    Command("code", "engine.code_cli", "run the same pipeline on NDJSON/Bundle files and write the results, without Kafka"),
    Command("deid", "engine.deid.cli", "de-identify plain text or NDJSON for inspection"),
    Command("deid-eval", "engine.deid.eval_cli", "measure de-identification recall/precision per PHI category on notes with gold spans"),
    Command("worklist", "engine.worklist.cli", "the coding worklist: list, claim, show, decide, complete"),
    Command("replay", "engine.replay_cli", "re-run audited notes through another model version and report the differences"),
    Command("evaluate-feedback", "engine.feedback_eval_cli", "join suggestions with coder decisions: precision, recall, F1, acceptance per model and code"),
    Command("config", "engine.config_cli", "validate the ICDCODER_* environment and print the settings (secrets masked)"),
]

if __name__ == "__main__":
    sys.exit(main("python -m engine", __doc__, COMMANDS))
