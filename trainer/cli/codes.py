"""``python -m trainer codes CODE ...``: normalise, validate, map and describe ICD-10-CM codes."""

from __future__ import annotations

import argparse

from schemas.cli import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("codes", nargs="+", metavar="CODE", help="codes in any case, with or without dots (e.g. e119 t81.4xx)")


def run(args: argparse.Namespace) -> int:
    from schemas.icd10cm import RELEASE, load_code_set, normalise

    code_set = load_code_set()
    print(f"{RELEASE}")
    unmappable = 0
    for raw in args.codes:
        code = normalise(raw)
        if code_set.is_valid(code):
            kind = "billable" if code_set.is_billable(code) else "valid, not billable"
            print(f"{raw:<12} {code:<9} {kind:<20} {code_set.description(code)}  [chapter {code_set.chapter(code)}, block {code_set.block(code)}]")
            continue
        target = code_set.nearest_valid(code)
        if target is None:
            unmappable += 1
            print(f"{raw:<12} {code:<9} {'NOT IN CODE SET':<20} no valid ancestor")
        else:
            print(f"{raw:<12} {code:<9} {'invalid -> ' + target:<20} {code_set.description(target)}")
    if unmappable == len(args.codes):
        raise UserError("none of the codes is in the code set or has a valid ancestor")
    return 0
