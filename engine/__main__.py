"""``python -m engine COMMAND``: the streaming ICD-10-CM coding service and its tools."""

import sys

from schemas.cli import Command, main
from schemas.threads import AUTO

COMMANDS = [
    Command("run", "engine.cli.run", "serve the stream: DocumentReference from Kafka in, FHIR Condition suggestions out", threads=AUTO),
    Command("code", "engine.cli.code", "run the same pipeline on NDJSON/Bundle files and write the results, without Kafka", threads=AUTO),
    Command("mllp", "engine.cli.mllp", "the MLLP bridge: HL7 v2 senders -> the input topic, ACK only after the broker stored the message"),
    Command("deid", "engine.cli.deid", "de-identify plain text or NDJSON for inspection"),
    Command("worklist", "engine.cli.worklist", "the coding worklist: list, claim, show, decide, complete"),
    Command("workbench", "engine.cli.workbench", "serve the coders' workbench: the worklist page and its HTTP API (sign-in, claims, decisions)"),
    Command("replay", "engine.cli.replay", "re-run audited notes through another model version and report the differences", threads=AUTO),
    Command("evaluate-feedback", "engine.cli.evaluate_feedback", "join suggestions with coder decisions: precision, recall, F1, acceptance per model and code"),
    Command("config", "engine.cli.config", "validate the ICDCODER_* environment and print the settings (secrets masked)"),
]

if __name__ == "__main__":
    sys.exit(main("python -m engine", __doc__, COMMANDS))
