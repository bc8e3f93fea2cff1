"""``python -m engine deid FILE``: de-identify plain text or NDJSON (one object a line with a "text" field)
and print the result. FILE may be "-" for standard input."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.deid.deidentifier import Deidentifier
from engine.deid.types import DeidConfig, DeidError
from schemas.cli import UserError
from schemas.phi import DEID_MODELS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help='plain text or NDJSON file ("-" reads standard input)')
    parser.add_argument("--format", choices=("auto", "text", "ndjson"), default="auto",
                        help="auto: NDJSON when the file ends in .ndjson/.jsonl or every line is a JSON object")
    parser.add_argument("--spans", action="store_true", help="also print the redactions (offsets and categories)")
    parser.add_argument("--model", choices=DEID_MODELS, default="rules+ner",
                        help="rules and the learned NER pipeline (default), the rules alone (faster, lower recall), or with the "
                             "fine-tuned MiniLM recogniser (rules+transformer, rules+ner+transformer; slower)")


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM); bytes that are not UTF-8 are read as Windows-1252, which maps every byte
    (mixed-encoding exports are common), so nothing is dropped."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _is_ndjson(name: str, text: str) -> bool:
    if name.endswith((".ndjson", ".jsonl")):
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and all(line.lstrip().startswith("{") and line.rstrip().endswith("}") for line in lines)


def _print_result(result, spans: bool, out) -> None:
    out.write(result.text if result.text.endswith("\n") else result.text + "\n")
    if spans:
        for o_s, o_e, n_s, n_e, cat in result.replacements:
            out.write(f"# {cat.value} original [{o_s}, {o_e}) -> [{n_s}, {n_e})\n")


def run(args: argparse.Namespace) -> int:
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(args.file)
        if not path.is_file():
            raise UserError(f"no such file: {path}")
        data = path.read_bytes()
    text = decode(data)
    out = sys.stdout
    deid = Deidentifier(DeidConfig(model=args.model))
    ndjson = args.format == "ndjson" or (args.format == "auto" and _is_ndjson(args.file, text))
    if not ndjson:
        try:
            _print_result(deid.deidentify(text), args.spans, out)
        except DeidError as err:
            raise UserError(f"{args.file}: {err}") from None
        return 0
    failed = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{args.file}:{lineno}: not JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise UserError(f'{args.file}:{lineno}: expected an object with a string "text" field')
        try:
            result = deid.deidentify(record["text"])
        except DeidError as err:
            failed += 1
            print(f"{args.file}:{lineno}: not de-identified, skipped: {err}", file=sys.stderr)
            continue
        record["text"] = result.text
        if args.spans:
            record["deid_replacements"] = [[o_s, o_e, n_s, n_e, c.value] for o_s, o_e, n_s, n_e, c in result.replacements]
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    if failed:
        print(f"{failed} record(s) could not be de-identified and were left out", file=sys.stderr)
        return 1
    return 0
