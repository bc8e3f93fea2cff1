"""``SUMMARY.md``: the families' JSON results as Markdown tables, each saying what was compared, on which
machine, in which mode. Plain functions of the result dicts (no measuring here)."""

from __future__ import annotations

from typing import Any

from bench.machine import machine_line


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "met" if value else "NOT met"
    if isinstance(value, float):  # 3 significant-ish digits: 0.842, 34.8, 34802
        return f"{value:.{digits}f}" if abs(value) < 10 else f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]]


def _row_by(r: dict[str, Any], predicate) -> dict[str, Any] | None:
    return next((row for row in r["rows"] if "error" not in row and predicate(row)), None)


def _goals(r: dict[str, Any]) -> list[list[Any]]:
    """The issue's Done-when checks on the report split, each with its figures (never a moved goal)."""
    def m(row: dict[str, Any] | None, key: str) -> Any:
        if row is None:
            return None
        value = row["metrics"].get(key)
        return value.get("macro_auc") if key == "low_frequency" and isinstance(value, dict) else value

    served = _row_by(r, lambda x: x.get("combination") == "served")
    xml = _row_by(r, lambda x: x.get("preset") == "bert-xml-512" and x.get("encoder") == "ehr")
    logreg = _row_by(r, lambda x: x.get("preset") == "logreg")
    cls = _row_by(r, lambda x: x.get("preset") == "bert-cls-512" and x.get("encoder") == "ehr")
    random = _row_by(r, lambda x: x.get("preset") == "bert-xml-1024-random-labels")
    out = []
    value = m(served, "official_map")
    out.append(["served combination: official MAP >= 0.40", _f(value), None if value is None else value >= 0.40])
    for key, label in (("micro_auc", "micro-AUC"), ("macro_auc", "macro-AUC"), ("low_frequency", "macro-AUC, codes with 1-10 training notes"), ("map", "label-space MAP")):
        a, b = m(xml, key), m(logreg, key)
        out.append([f"EHR-BERT + XML beats logistic regression: {label}", f"{_f(a)} vs {_f(b)}", None if a is None or b is None else a > b])
    for name, other, key in (("XML beats [CLS] (micro-AUC)", cls, "micro_auc"), ("semantic label init beats random (micro-AUC)", random, "micro_auc")):
        a, b = m(xml, key), m(other, key)
        out.append([name, f"{_f(a)} vs {_f(b)}", None if a is None or b is None else a > b])
    held = (r.get("ehr_pretraining") or {}).get("held_out_loss")
    out.append(["EHR-BERT held-out MLM loss <= 3.0", _f(held), None if held is None else held <= 3.0])
    return out


def quality_section(r: dict[str, Any]) -> list[str]:
    lines = ["## Quality: CodiEsp English diagnosis codes (paper Table 2/3, ablations)", "", r["what"] + f"; trained on {r['train_split']}, "
             f"selected on: {r['selection_split']}; reported on **{r['report_split']}**.", ""]
    if r.get("report_split_note"):
        lines += [f"> {r['report_split_note']}.", ""]
    rows = []
    for row in r["rows"]:
        m = row.get("metrics") or {}
        low = (m.get("low_frequency") or {})
        p_at = m.get("precision_at_k") or {}
        if "error" in row:
            rows.append([row["row"], row.get("max_length"), f"failed: {row['error'][:80]}", *[""] * 9])
            continue
        wall = f"{row.get('eval_seconds', 0):.0f} (eval; run reused)" if row.get("reused_run") else f"{row.get('train_seconds', 0) + row.get('eval_seconds', 0):.0f}"
        rows.append([row["row"], row.get("max_length"), m.get("official_map"), m.get("map"), m.get("micro_auc"), m.get("macro_auc"), m.get("micro_f1"),
                     p_at.get("5"), m.get("map_unseen"), f"{_f(low.get('macro_auc'))} ({low.get('codes', 0)})", wall])
    lines += _table(["model", "max len", "official MAP", "label-space MAP", "micro-AUC", "macro-AUC", "micro-F1", "P@5", "MAP unseen codes",
                     f"macro-AUC, {r['low_frequency_slice']} (codes)", "wall s"], rows)
    first = next((row for row in r["rows"] if "metrics" in row and "coverage" in row["metrics"]), None)
    served = _row_by(r, lambda x: x.get("combination") == "served")
    notes = ["Official MAP: CodiEsp's metric (per note, the ranked codes against ALL its gold codes; a gold code the model cannot rank is "
             "a miss; same as the trectools evaluation). Label-space metrics (MAP, AUC, F1, P@5) use the classifier's codes only; for the "
             "combination rows they use its fused scores on those codes. MAP unseen: gold codes never seen in training, ranked among every "
             "candidate never seen in training."]
    if first:
        cov = first["metrics"]["coverage"]
        notes.append(f"Classifier label space: {first['metrics'].get('codes')} codes (every code with a training note) covering {cov['covered']} of "
                     f"{cov['gold_occurrences']} gold code occurrences ({cov['share']:.1%}); the combination ranks "
                     f"{_f((served or {}).get('metrics', {}).get('candidate_codes'))} candidate codes.")
    if served and served["metrics"].get("fusion"):
        f = served["metrics"]["fusion"]
        notes.append(f"Served fusion ({f.get('formula')}): wm {f['model_weight']}, wn {f['neighbours_weight']} (k {f['neighbours_k']}), wd {f['description_weight']} "
                     f"(fd {f['description_floor']}), we {f['example_weight']} (fe {f['example_floor']}), threshold {_f(f['threshold'])}; chosen on "
                     f"{f.get('selected_on')} (official MAP there {_f((f.get('selection') or {}).get('official_map'))}).")
    lines += ["", " ".join(notes)]
    lines += ["", "Goals (issue 13, report split):", ""]
    lines += _table(["goal", "figure", "met"], _goals(r))
    lines += ["", "Recipes (every row's full recipe is in quality.json):", ""]
    for row in r["rows"]:
        rec, t = row.get("recipe") or {}, row.get("training") or {}
        opt = rec.get("optim") or {}
        bits = [f"lr {opt['lr']:g}, head lr {opt['head_lr']:g}, up to {opt['max_epochs']} epochs (patience {opt['patience']}), {opt['precision']}"] if opt else []
        if t.get("best_step") is not None:
            bits.append(f"best step {t['best_step']} of {t.get('steps')} ({t.get('steps_per_epoch')}/epoch)")
        if row.get("combination"):
            bits.append(f"fused on {row.get('base_row')}")
        lines.append(f"- {row['row']}: " + ("; ".join(bits) or "defaults"))
    p = r.get("ehr_pretraining")
    if p:
        lines += ["", "EHR-BERT pretraining (MLM, phases continue each other; held-out loss on held-out notes at the phase's length):", ""]
        lines += _table(["phase", "max len", "steps", "tokens", "tokens/s", "precision", "first loss", "final loss", "held-out loss", "curve"],
                        [[x["phase"], x["max_length"], x["steps"], x["tokens"], x["tokens_per_s"], x.get("precision"), x["first_loss"], x["final_loss"],
                          x["held_out_loss"], x["png"]] for x in p["phases"]])
        history = [pt for x in p["phases"] for pt in (x.get("loss_history") or [])]
        if history:
            marks = history[:: max(1, len(history) // 12)]
            lines += ["", "Loss curve (training loss, every ~1/12 of the run): " + ", ".join(f"{int(s)}: {v:.2f}" for s, v in marks) + "."]
        for ex in p.get("fill_mask", []):
            lines.append(f"- fill-mask `{ex['text']}` -> " + "; ".join(", ".join(slot) for slot in ex["predictions"]))
    v = r["vocabulary"]
    lines += ["", f"Vocabulary (paper 4.2.1: {v['paper_oov_per_note']['general']} vs {v['paper_oov_per_note']['ehr']} OOV words per note), "
              f"{v['held_out_notes']} held-out notes{' (de-identified)' if v['deidentified'] else ''}:", ""]
    lines += _table(["vocabulary", "size", "OOV words / note", "OOV share"],
                    [[name, s["vocab_size"], round(s["oov_per_note"], 2), f"{s['oov_share']:.1%}"] for name, s in v["vocabularies"].items()])
    return lines


def inference_section(r: dict[str, Any]) -> list[str]:
    m, n = r["model"], r["notes"]
    fused = ", ".join(f"{op} {k}" for op, k in (m.get("fused_operators") or {}).items()) or "none"
    lines = ["## Inference speed", "", f"{r['what']}. Model: BERT-XML, `{m['encoder']}` encoder, {m['codes']} codes, evidence top-{m['evidence_top_k']}; "
             f"exported graph's fused operators: {fused}; {n['n']} MTSamples notes (word pieces p50 {n['word_pieces_p50']}, p90 {n['word_pieces_p90']}, "
             f"max {n['word_pieces_max']}); {r['threads']} thread(s) each; {r.get('request_segments', r['batch_segments'])} segment(s) per request bucketed "
             f"(the engine's default), {r['batch_segments']} per batch with fixed padding; {r['timing']}.", ""]
    eager = {c["padding"]: c["notes_per_s"] for c in r["comparisons"] if c["runtime"].startswith("pytorch")}
    lines += _table(["runtime", "padding", "max len", "notes/s", "x PyTorch eager", "real tokens/s", "ms/note", "real-token share"],
                    [[c["runtime"], c["padding"], c["max_length"], c["notes_per_s"], f"{c['notes_per_s'] / eager[c['padding']]:.2f}x" if eager.get(c["padding"]) else "",
                      c["real_tokens_per_s"], c["ms_per_note"], f"{c['real_token_share']:.0%}"] for c in r["comparisons"]])
    g = r.get("goals")
    if g:
        acc = g["int8_accuracy"]
        lines += ["", f"Goals (bucketed, max length {r['comparisons'][0]['max_length']}): embedded fp32 >= {g['embedded_vs_eager']['goal']}x PyTorch eager: "
                  f"{g['embedded_vs_eager']['ratio']}x, **{_f(g['embedded_vs_eager']['met'])}**; int8 >= {g['int8_vs_embedded']['goal']}x embedded fp32: "
                  f"{g['int8_vs_embedded']['ratio']}x, **{_f(g['int8_vs_embedded']['met'])}**; int8 official MAP and micro-AUC within {acc['goal']} of fp32: "
                  f"largest change {_f(acc['max_abs_delta'], 4)}, **{_f(acc['met']) if acc['met'] is not None else 'not measured (untrained model)'}**. Fastest fp32 runtime here: {g.get('fastest_fp32_runtime')}; "
                  f"fastest of all: {g.get('fastest_runtime')}."]
    if r.get("accuracy"):
        a0 = r["accuracy"][0]
        lines += ["", f"Accuracy on CodiEsp {a0['split']} ({a0['notes']} notes; official MAP = CodiEsp's, over all gold codes)"
                  + ("" if m.get("trained", True) else "; quick mode: the model is untrained, the changes say little") + ":", ""]
        lines += _table(["runtime", "micro-AUC", "official MAP", "change in micro-AUC", "change in official MAP"],
                        [[a["runtime"], _f(a["micro_auc"], 4), _f(a["official_map"], 4), _f(a.get("delta_micro_auc"), 4), _f(a.get("delta_official_map"), 4)]
                         for a in r["accuracy"]])
    lines += ["", "Cost growth with max length (embedded default, fixed padding; paper: doubling the length roughly tripled the time):", ""]
    lines += _table(["max len", "segments", "ms/segment", "x previous", "ms/note", "x previous"],
                    [[g["max_length"], g["segments"], g["ms_per_segment"], g.get("ms_per_segment_ratio_to_previous"), g["ms_per_note"],
                      g.get("ms_per_note_ratio_to_previous")] for g in r["cost_growth"]])
    return lines


def training_section(r: dict[str, Any]) -> list[str]:
    lines = ["## Training speed", "", f"{r['what']}; `{r['encoder']}` encoder, max length {r['max_length']}, {r['threads']} thread(s), "
             f"device {r['device']} (GPU: {r['gpu']}).", ""]
    rows = [[name, s.get("steps"), s.get("tokens"), s.get("elapsed_s"), s.get("tokens_per_s")] for name, s in
            (("MLM pretraining", r["pretraining"]), ("BERT-XML fine-tuning", r["finetuning_bert_xml"]))]
    rows += [[f"quality row: {q['row']}", q["steps"], "", "", q["tokens_per_s"]] for q in r.get("quality_rows", [])]
    return lines + _table(["what", "steps", "real tokens", "seconds", "tokens/s"], rows)


def shared_section(r: dict[str, Any]) -> list[str]:
    d = r["slowdown"]["defaults"]
    lines = ["## Training on a shared machine", "", f"{r['what']}; {r['steps']} steps each, {r['cores']} cores. Goal: beside the busy process at most "
             f"{r['goal_max_slowdown']}x slower than alone, with the defaults: {d['slowdown']}x, **{_f(d['met'])}**.", ""]
    lines += _table(["settings", "condition", "threads (plan)", "steps/s", "training s", "command s"],
                    [[x["settings"], x["condition"], f"{x['threads']} ({x['thread_plan']})", x["steps_per_s"], x["train_seconds"], x["command_seconds"]] for x in r["rows"]])
    lines += ["", "Slowdown beside the busy process: " + "; ".join(f"{label} {s['slowdown']}x" for label, s in r["slowdown"].items()) + "."]
    return lines


def gpu_section(r: dict[str, Any]) -> list[str]:
    z = r["sizes"]
    lines = ["## GPU check", "", f"{r['what']}. Device: {r['device']}; torch {r['torch']}; onnxruntime providers: {', '.join(r['onnxruntime_providers'])}; "
             f"`{z['encoder']}` encoder, batch {z['batch']}, {z['steps']} timed steps after {z['warmup']} warm-up. MFU against the GPU's dense bf16/fp16 "
             "tensor-core peak (so fp32 rows are low by design; n/a on CPU).", ""]
    lines += _table(["task", "length", "precision", "attention", "tokens/s", "ms/step", "MFU", "peak GiB"],
                    [[t["task"], t["length"], t["precision"], t["attention"], t.get("tokens_per_s", t.get("skipped") or t.get("error")), t.get("ms_per_step"),
                      t.get("mfu"), t.get("max_memory_gib")] for t in r["training"]])
    lines += ["", "Cost of a sequence at the longer length over the shorter (paper: ~3x; goal <= 2.2x with flash attention, bf16/fp16 fine-tuning):", ""]
    lines += _table(["task", "precision", "attention", "ratio", "goal"],
                    [[c["task"], c["precision"], c["attention"], c["ratio"], c.get("met", "")] for c in r["cost_ratio"]])
    lines += ["", "Inference (sequences per second, batch of equal-length sequences):", ""]
    lines += _table(["runtime", "precision", "length", "sequences/s"],
                    [[i["runtime"], i["precision"], i["length"], i.get("sequences_per_s", i.get("skipped") or i.get("error"))] for i in r["inference"]])
    lines += ["", "Reduced vs full precision, same weights and inputs: " + "; ".join(
        f"{p['precision']} ({p.get('runtime', '?')}): max |probs diff| {_f(p.get('max_abs_probs'), 5)}, max |evidence weight diff| "
        f"{_f(p.get('max_abs_weights'), 5)}, evidence positions agree {_f(p.get('positions_agree'))}" if "error" not in p and "skipped" not in p
        else f"{p['precision']}: {p.get('error') or p.get('skipped')}" for p in r["parity"]) + "."]
    return lines


def deid_section(r: dict[str, Any]) -> list[str]:
    measured = sorted({x.get("model", "rules") for x in r["results"]})  # results written before the learned model say nothing of it
    lines = ["## De-identification speed and recall", "", f"Speed: {r['what']}. Goal >= {r['goal_notes_per_s_per_core']:.0f} notes/s per core "
             f"(de-identifier(s) measured in this run: {', '.join(measured)}): **{_f(r['goal_met'])}**"
             + ("" if "rules+ner" in measured else "; the default de-identifier (rules + NER) was not measured in this run") + ".", ""]
    lines += _table(["de-identifier", "notes", "n", "mean words", "notes/s/core (wall)", "notes per CPU-s", "words/s", "ms/note p50", "ms/note p95",
                     "spans replaced", "goal"],
                    [[x.get("model", "rules"), x["notes_source"], x["notes"], x["mean_words"], x["notes_per_s_per_core"], x.get("notes_per_cpu_s"),
                      x["words_per_s"], x["ms_per_note"].get("p50"), x["ms_per_note"].get("p95"), x["spans_replaced"], x["goal_met"]]
                     for x in r["results"]])
    for model, q in r.get("quality", {}).items():
        lines += ["", f"Recall on independent data, de-identifier `{model}` (goal: >= 0.98 per category, >= 0.99 overall; "
                  f"eponym survival {q['eponym_survival']:.0%}). A gold span counts as caught when all of it is redacted; "
                  "FACILITY (facilities, employers) is redacted as `[ADDRESS]`.", ""]
        names = list(q["sets"])
        labels = sorted({lab for s in q["sets"].values() for lab, v in s["categories"].items() if v["gold"]}, key=_label_order)
        rows = []
        for lab in [*labels, "overall"]:
            row = [lab]
            for name in names:
                v = q["sets"][name]["overall" if lab == "overall" else "categories"]
                v = v if lab == "overall" else v.get(lab, {})
                row.append(f"{v['recall']:.3f} ({v['gold']})" if v.get("gold") else "")
                row.append(f"{v['precision']:.3f}" if v.get("precision") is not None else "")
            rows.append(row)
        rows.append(["goal"] + [x for name in names for x in ("met" if q["sets"][name]["goal"]["met"] else "NOT met", "")])
        lines += _table(["category", *[x for name in names for x in (f"{name}: recall (gold)", "precision")]], rows)
    return lines


def _label_order(label: str) -> tuple[int, str]:
    order = ["NAME", "ADDRESS", "FACILITY", "DATE", "AGE", "PHONE", "ID", "EMAIL", "URL", "IP"]
    return (order.index(label) if label in order else len(order), label)


def pipeline_section(r: dict[str, Any]) -> list[str]:
    m = r["model"]
    lines = ["## End to end: engine vs raw inference", "", f"{r['what']}; BERT-XML `{m['encoder']}`, max length {m['max_length']}, "
             f"{r['notes']} MTSamples notes. Goal: overhead <= {r['goal_max_overhead']:.0%} over raw inference through Triton.", ""]
    rows = [["raw inference, onnxruntime in-process", r["raw_onnxruntime_in_process"]["notes_per_s"], "", ""],
            ["raw inference, Triton", r["raw_triton"]["notes_per_s"], "(baseline)", ""]]
    proc = r["note_processor_triton"]
    rows.append(["NoteProcessor in-process (parse, deid, segment, Triton, aggregate, FHIR)", proc["notes_per_s"],
                 f"{r['note_processor_triton_overhead_vs_raw_triton']:+.0%}", r["note_processor_triton_goal_met"]])
    if "service" in r:
        s = r["service"]
        rows.append(["engine service via Kafka + Triton (backlog)", s["backlog"]["notes_per_s"], f"{r['service_overhead_vs_raw_triton']:+.0%}", r["service_goal_met"]])
    lines += _table(["what", "notes/s", "overhead vs raw Triton", "goal"], rows)
    lines += ["", "NoteProcessor time per note by stage (ms): " + ", ".join(f"{k} {v}" for k, v in proc["stage_ms_per_note"].items()) + "."]
    if "service" in r:
        lat = r["service"]["paced"]
        p = lat["latency_s"]
        lines += ["", f"Service latency at {lat['rate_notes_per_s']} notes/s offered ({lat.get('rate_chosen', 'given')}; {lat['notes']} notes; input record time -> output record time): "
                  f"p50 {p.get('p50')} s, p90 {p.get('p90')} s, p99 {p.get('p99')} s, max {p.get('max')} s. Dead letters: {r['service']['dead_letters']}."]
    else:
        lines += ["", f"The engine service run failed: {r.get('service_error')} (in-process NoteProcessor figures above stand in for it)."]
    return lines


def context_section(r: dict[str, Any]) -> list[str]:
    report = r["classification"]["report"]
    neg = report["per_class"]["negated"]
    goal = report["negation_goal"]
    lines = ["## Evidence context (negated, uncertain, historical, family)", "",
             f"{r['what']}. Classifier: `engine/pipeline/context.py` (ConText-style rules, `context_rules.yaml`). Labelled sets: condition "
             f"mentions in MTSamples and CodiEsp sentences, labelled by a person reading each sentence (docs/context.md); the rules were tuned on "
             f"**dev** and frozen before **report** was labelled, so report is the measurement.", "",
             f"Negation goal (report set: recall >= {goal['recall_min']}, precision >= {goal['precision_min']}): **{_f(goal['met'])}** "
             f"(recall {_f(neg['recall'])}, precision {_f(neg['precision'])}).", ""]
    rows = []
    for name in ("report", "dev"):
        c = r["classification"][name]
        for cls, m in c["per_class"].items():
            rows.append([f"{name}{' (tuned on)' if name == 'dev' else ''}", cls, m["gold"], m["predicted"], m["precision"], m["recall"], m["f1"]])
    lines += _table(["set", "context", "gold", "predicted", "precision", "recall", "F1"], rows)
    lines += ["", f"Report set: {report['mentions']} mentions ({', '.join(f'{k} {v}' for k, v in report['by_stratum'].items())}), accuracy {_f(report['accuracy'])}."]
    if "policy" in r:
        p = r["policy"]
        d = p["default"]
        lines += ["", f"Policy on the engine's CodiEsp suggestions (model: {p['model']}); official MAP = per note, average precision over ALL its gold "
                  f"codes, mean over notes. Default chosen on the train slice: **{d['variant']}** (negated: {d['negated']}, family: {d['family']}).", ""]
        rows = []
        for split, s in p["splits"].items():
            for name, m in s["policies"].items():
                rows.append([f"{split} ({s['notes']} notes){' report' if split == p['report_split'] else ''}", name, m["precision"], m["recall"], m["micro_f1"],
                             m["official_map"], m["suggestions"], f"{m['suggestions_changed']} ({m['changed_that_were_gold']} gold)"])
        lines += _table(["split", "policy", "precision", "recall", "micro-F1", "official MAP", "suggested", "changed by policy (of them gold)"], rows)
        for split, s in p["splits"].items():
            lines += ["", f"Suggestion contexts on {split}: " + ", ".join(f"{k} {v}" for k, v in sorted(s["suggestion_contexts"].items())) + "."]
    if "cost" in r:
        c = r["cost"]
        lines += ["", f"Cost: the context stage took {c['context_ms_per_note']} ms per note vs {c['infer_ms_per_note']} ms of inference "
                  f"(onnxruntime, this model) over {c['notes']} notes ({_f(c['context_share_of_infer'])} of inference)."]
    return lines


def workbench_section(r: dict[str, Any]) -> list[str]:
    lat = r["latency_ms"]
    lines = ["## Workbench under load", "", f"{r['what']}: {r['items_completed']} items completed in {r['wall_s']} s "
             f"({r['items_per_s']} items/s, {r['requests_per_s']} requests/s); {r['items_left_queued']} left queued. "
             f"No item claimed twice: **{_f(r['no_item_claimed_twice'])}**; no decision lost: **{_f(r['no_decision_lost'])}** "
             f"({r['feedback_records']} feedback records, {r['feedback_duplicates']} duplicates). HTTP errors: {r['http_errors'] or 'none'}.", ""]
    return lines + _table(["action", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                          [[a, lat[a].get("n"), lat[a].get("p50"), lat[a].get("p95"), lat[a].get("p99"), lat[a].get("max")]
                           for a in ("all", "claim", "decide", "complete") if lat.get(a)])


def chaos_section(r: dict[str, Any]) -> list[str]:
    lines = ["## Chaos: one fault at a time while the engine codes a stream", "", f"{r['what']}; {r['notes_per_fault']} notes per fault "
             "(half before the fault, half after). Nothing lost = every note is an output Bundle or a dead letter; duplicates must be "
             f"byte-identical; recovery = fault over -> first note after it handled. All met: **{_f(r['all_met'])}**."
             + (f" Model served: `{r['model']}`." if r.get("model") else ""), ""]
    rows = []
    for x in r["faults"]:
        if "skipped" in x or "error" in x:
            rows.append([x["fault"], x.get("skipped") and f"skipped: {x['skipped']}" or f"failed: {x['error'][:80]}", "", "", "", "", ""])
            continue
        rows.append([x["fault"], f"{x['notes_in']} in = {x['outputs_distinct']} out + {x['dead_letters']} dead letters", x["lost"] == 0,
                     x["non_identical_duplicates"], x["output_records"] - x["outputs_distinct"], x["recovery_s"], x["manual_action"]])
    lines += _table(["fault", "counts", "nothing lost", "non-identical duplicates", "identical re-emissions", "recovery s", "manual action"], rows)
    notes = [f"{x['fault']}: {x['note']}" for x in r["faults"] if x.get("note")]
    return lines + ([""] + [f"- {n}" for n in notes] if notes else [])


def _measured_line(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    load = m.get("load_average_1_5_15") or ["?"]
    line = f"\n_Measured {m.get('date_utc', '?')} UTC on {m.get('cpu', '?')}, commit {m.get('git_commit', '?')}, load average {load[0]} at the start, {r.get('family_seconds', 0) / 60:.1f} min"
    sampled = r.get("load") or {}
    if sampled.get("busy_elsewhere_mean") is not None:
        line += f"; other processes kept {sampled['busy_elsewhere_mean']} core(s) busy on average (p90 {sampled['busy_elsewhere_p90']})"
    line += "._"
    if sampled.get("warning"):
        line += f"\n\n> **Load warning:** {sampled['warning']}."
    return line


SECTIONS = {"quality": quality_section, "inference": inference_section, "training": training_section, "shared": shared_section, "deid": deid_section,
            "pipeline": pipeline_section, "context": context_section, "workbench": workbench_section, "chaos": chaos_section, "gpu": gpu_section}


def render_summary(results: dict[str, dict[str, Any]], run_info: dict[str, Any]) -> str:
    any_result = next(iter(results.values()), None)
    mode = run_info.get("mode", any_result["mode"] if any_result else "?")
    lines = [f"# Benchmarks ({mode.upper()} mode)", ""]
    if mode == "quick":
        lines += ["> QUICK mode: tiny models, few steps, short max lengths, a subset of rows. The figures check that the machinery works "
                  "and show directions; they are not the paper's numbers. `make bench` runs the full mode.", ""]
    if any_result:
        lines += [f"Machine: {machine_line(any_result['machine'])}.", ""]
        cpus: dict[str, list[str]] = {}
        for family, result in results.items():
            cpus.setdefault(result.get("machine", {}).get("cpu", "?"), []).append(family)
        if len(cpus) > 1:  # results kept from runs on different machines: each family's footer names its CPU
            lines += ["Families measured on different machines: " + "; ".join(f"{cpu}: {', '.join(fams)}" for cpu, fams in cpus.items()) + ".", ""]
    for run in run_info.get("runs", []):
        lines += [f"- run of {run.get('date_utc', '?')} UTC: {', '.join(run['families'])} ({run['seconds'] / 60:.1f} min wall for "
                  f"{', '.join(f'{f} {s / 60:.1f}' for f, s in run.get('family_seconds', {}).items())})" + (f"; {run['note']}" if run.get("note") else "")]
    lines += [""]
    for family, section in SECTIONS.items():
        if family in results:
            try:
                lines += section(results[family]) + [_measured_line(results[family]), ""]
            except (KeyError, TypeError) as err:  # a result written by an older version: say so, keep the rest
                lines += [f"## {family}", "", f"(result file not in the expected shape: {type(err).__name__}: {err})", ""]
        elif family in run_info.get("errors", {}):
            lines += [f"## {family}", "", f"Failed: {run_info['errors'][family]}", ""]
    return "\n".join(lines)
