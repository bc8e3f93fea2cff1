"""``python -m bench deid-eval``: recall/precision per PHI category on independent sets (hand-written notes,
a mimesis generator) and on the project's own sets (synthetic notes, PHI planted into MTSamples), clinical
words removed, eponym survival, against the recall goals. Prints tables; writes JSON and an HTML page."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tqdm import tqdm

from bench.deid_eval.evaluation import EvalReport, eponym_survival, evaluate, goal_check
from bench.deid_eval.independent import HELD_OUT_SPLITS, handwritten, mimesis_notes
from bench.deid_eval.planting import mtsamples_planted, synthetic_gold
from bench.deid_eval.report import html_page, table
from bench.families.deid import measure, notes_of_words
from engine.deid.deidentifier import Deidentifier
from engine.deid.types import DeidConfig
from schemas.cli import UserError, default_data_dir
from schemas.phi import DEID_MODELS
from trainer.data.importers.mtsamples import mtsamples_texts

INDEPENDENT = ("handwritten-test", "handwritten-test2", "handwritten-test3", "handwritten-test4", "handwritten-dev", "handwritten-dev2", "mimesis")  # written without the recognisers' generators
HELD_OUT = tuple(f"handwritten-{split}" for split in HELD_OUT_SPLITS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=(*DEID_MODELS, "both", "all"), default="rules+ner",
                        help="de-identifier to measure: rules + learned NER (the default), rules alone, rules + transformer, "
                             "rules + both models; 'both' = rules+ner and rules, 'all' = every setting")
    parser.add_argument("--ner-model-dir", type=Path, default=None,
                        help="NER pipeline to measure (default: the one shipped in engine/deid/model), e.g. a fresh trainer deid-model output")
    parser.add_argument("--transformer-model-dir", type=Path, default=None,
                        help="transformer recogniser to measure (default: engine/deid/transformer), e.g. a fresh trainer deid-transformer output")
    parser.add_argument("--handwritten", action=argparse.BooleanOptionalAction, default=True,
                        help="the hand-written notes (test, test2, test3, test4: held out; dev, dev2: used while building)")
    parser.add_argument("--held-out", action=argparse.BooleanOptionalAction, default=True,
                        help="with the hand-written notes, also the held-out ones (--no-held-out while choosing settings)")
    parser.add_argument("--mimesis", type=int, default=300, metavar="N", help="notes from the mimesis generator (0: skip)")
    parser.add_argument("--synthetic", type=int, default=500, metavar="N", help="synthetic notes (0: skip)")
    parser.add_argument("--mtsamples", type=int, default=500, metavar="N", help="MTSamples notes with planted PHI (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="data directory holding mtsamples/mtsamples.csv (default: $ICDCODER_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=Path("deid-eval"), help="folder for deid_eval.json and deid_eval.html")
    parser.add_argument("--bench", type=int, default=0, metavar="N",
                        help="also time de-identification alone on N MTSamples notes cut/padded to 1,000 words (one thread)")
    parser.add_argument("--html-examples", type=int, default=3, help="notes of each set shown in the HTML page (none of the held-out sets)")


def gold_sets(args: argparse.Namespace) -> list[tuple[str, list]]:
    if min(args.synthetic, args.mtsamples, args.mimesis) < 0:
        raise UserError("--synthetic, --mtsamples and --mimesis must be >= 0")
    sets = []
    if args.handwritten:
        splits = ("test", "test2", "test3", "test4", "dev", "dev2") if args.held_out else ("dev", "dev2")
        sets += [(f"handwritten-{split}", list(handwritten(split))) for split in splits]
    if args.mimesis:
        sets.append(("mimesis", mimesis_notes(args.mimesis, args.seed)))
    if args.synthetic:
        sets.append(("synthetic", synthetic_gold(args.synthetic, args.seed)))
    if args.mtsamples:
        csv_path = args.data_dir / "mtsamples" / "mtsamples.csv"
        if not csv_path.is_file():
            raise UserError(f"MTSamples not found at {csv_path} (set --data-dir or ICDCODER_DATA_DIR, or pass --mtsamples 0)")
        sets.append(("mtsamples-planted", mtsamples_planted(csv_path, args.mtsamples, args.seed)))
    return sets


def run(args: argparse.Namespace) -> int:
    sets = gold_sets(args)
    models = {"both": ("rules+ner", "rules"), "all": DEID_MODELS}.get(args.model, (args.model,))
    results, all_reports, examples = [], [], []
    for model in models:
        deid = Deidentifier(DeidConfig(model=model, ner_model_dir=args.ner_model_dir, transformer_model_dir=args.transformer_model_dir))
        reports: list[EvalReport] = []
        timings = {}
        for name, notes in sets:
            start = time.perf_counter()
            with tqdm(total=len(notes), desc=f"{model}: {name}", unit="note") as bar:
                reports.append(evaluate(deid, notes, f"{name} [{model}]", progress=bar.update))
            seconds = time.perf_counter() - start
            timings[name] = {"notes_per_s": len(notes) / seconds, "words_per_s": sum(len(n.text.split()) for n in notes) / seconds}
            if model == models[0] and name not in HELD_OUT:  # held-out errors are never shown, only their figures
                examples += [(f"{name} #{i}", n, deid.deidentify(n.text).detected) for i, n in enumerate(notes[: args.html_examples])]
        if args.bench:
            csv_path = args.data_dir / "mtsamples" / "mtsamples.csv"
            if not csv_path.is_file():
                raise UserError(f"MTSamples not found at {csv_path} (needed by --bench)")
            timings["bench_1000_words"] = measure(deid, notes_of_words(mtsamples_texts(csv_path), 1000, args.bench))
        survival, lost = eponym_survival(deid)
        print(table(reports))
        goals = {r.name: goal_check(r) for r, (name, _) in zip(reports, sets) if name in INDEPENDENT}
        for name, g in goals.items():
            below = ", ".join(f"{k} {v:.4f}" for k, v in g["categories_below_goal"].items()) or "none"
            print(f"goal {name}: {'met' if g['met'] else 'NOT met'} (overall recall {g['overall_recall']:.4f}, "
                  f"precision {g['overall_precision']:.4f}; categories below {g['per_category_goal']}: {below})")
        print(f"eponym survival [{model}]: {survival:.2%}" + (f" (lost: {', '.join(lost)})" if lost else ""))
        for name, t in timings.items():
            note = "" if name.startswith("bench") else " (incl. scoring)"
            cpu = f", {t['notes_per_cpu_s']:.1f} notes per CPU-second" if "notes_per_cpu_s" in t else ""
            print(f"speed {name} [{model}]: {t.get('notes_per_s', t.get('notes_per_s_per_core')):.1f} notes/s, {t['words_per_s']:.0f} words/s{cpu}{note}")
        results.append({"model": model, "sets": [r.as_dict() for r in reports], "goals": goals, "eponym_survival": survival,
                        "eponyms_lost": lost, "speed": timings})
        all_reports += reports
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "deid_eval.json").write_text(json.dumps({"models": results, "seed": args.seed}, indent=2))
    (args.out / "deid_eval.html").write_text(html_page(all_reports, examples), encoding="utf-8")
    print(f"wrote {args.out / 'deid_eval.json'} and {args.out / 'deid_eval.html'}")
    return 0
