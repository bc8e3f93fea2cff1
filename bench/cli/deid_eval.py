"""``python -m engine deid-eval``: recall/precision per PHI category on synthetic notes and on PHI planted
into MTSamples, clinical words removed, eponym survival. Prints a table; writes JSON and an HTML page."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tqdm import tqdm

from bench.deid_eval.evaluation import EvalReport, eponym_survival, evaluate
from bench.deid_eval.planting import mtsamples_planted, synthetic_gold
from bench.deid_eval.report import html_page, table
from bench.families.deid import measure, notes_of_words
from engine.deid.deidentifier import Deidentifier
from engine.deid.types import DeidConfig
from schemas.cli import UserError, default_data_dir
from trainer.data.importers.mtsamples import mtsamples_texts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--synthetic", type=int, default=500, metavar="N", help="synthetic notes (0: skip)")
    parser.add_argument("--mtsamples", type=int, default=500, metavar="N", help="MTSamples notes with planted PHI (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="data directory holding mtsamples/mtsamples.csv (default: $ICDCODER_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=Path("deid-eval"), help="folder for deid_eval.json and deid_eval.html")
    parser.add_argument("--bench", type=int, default=0, metavar="N",
                        help="also time de-identification alone on N MTSamples notes cut/padded to 1,000 words (one thread)")
    parser.add_argument("--html-examples", type=int, default=3, help="notes of each set shown in the HTML page")


def run(args: argparse.Namespace) -> int:
    if args.synthetic < 0 or args.mtsamples < 0:
        raise UserError("--synthetic and --mtsamples must be >= 0")
    sets = []
    if args.synthetic:
        sets.append(("synthetic", synthetic_gold(args.synthetic, args.seed)))
    if args.mtsamples:
        csv_path = args.data_dir / "mtsamples" / "mtsamples.csv"
        if not csv_path.is_file():
            raise UserError(f"MTSamples not found at {csv_path} (set --data-dir or ICDCODER_DATA_DIR, or pass --mtsamples 0)")
        sets.append(("mtsamples-planted", mtsamples_planted(csv_path, args.mtsamples, args.seed)))
    deid = Deidentifier(DeidConfig())
    reports: list[EvalReport] = []
    timings = {}
    examples = []
    for name, notes in sets:
        start = time.perf_counter()
        with tqdm(total=len(notes), desc=name, unit="note") as bar:
            reports.append(evaluate(deid, notes, name, progress=bar.update))
        seconds = time.perf_counter() - start
        words = sum(len(n.text.split()) for n in notes)
        timings[name] = {"notes_per_s": len(notes) / seconds, "words_per_s": words / seconds}
        examples += [(f"{name} #{i}", n, deid.deidentify(n.text).detected) for i, n in enumerate(notes[: args.html_examples])]
    if args.bench:
        csv_path = args.data_dir / "mtsamples" / "mtsamples.csv"
        if not csv_path.is_file():
            raise UserError(f"MTSamples not found at {csv_path} (needed by --bench)")
        texts = mtsamples_texts(csv_path)
        timings["bench_1000_words"] = measure(deid, notes_of_words(texts, 1000, args.bench))
    survival, lost = eponym_survival(deid)
    print(table(reports))
    print(f"\neponym survival: {survival:.2%}" + (f" (lost: {', '.join(lost)})" if lost else ""))
    for name, t in timings.items():
        note = "" if name.startswith("bench") else " (incl. scoring)"
        cpu = f", {t['notes_per_cpu_s']:.1f} notes per CPU-second" if "notes_per_cpu_s" in t else ""
        print(f"speed {name}: {t.get('notes_per_s', t.get('notes_per_s_per_core')):.1f} notes/s, {t['words_per_s']:.0f} words/s{cpu}{note}")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"sets": [r.as_dict() for r in reports], "eponym_survival": survival, "eponyms_lost": lost,
              "speed": timings, "seed": args.seed}
    (args.out / "deid_eval.json").write_text(json.dumps(result, indent=2))
    (args.out / "deid_eval.html").write_text(html_page(reports, examples), encoding="utf-8")
    print(f"wrote {args.out / 'deid_eval.json'} and {args.out / 'deid_eval.html'}")
    return 0
