"""Printing the demo's suggestions as a coder would see them: code, description, score, evidence."""

from __future__ import annotations

import json

from bench.docref import fhir_id
from engine.pipeline.fhir_bundle import EXT_EVIDENCE, EXT_SCORE


def _extension(resource: dict, url: str) -> list[dict]:
    return [e for e in resource.get("extension", []) if e["url"] == url]


def _evidence_lines(c: dict, text: str, limit: int) -> list[str]:
    lines = []
    for ev in _extension(c, EXT_EVIDENCE)[:limit]:
        parts = {e["url"]: e for e in ev["extension"]}
        start, end = parts["start"]["valueInteger"], parts["end"]["valueInteger"]
        context = parts.get("context", {}).get("valueCode")  # evidence context (engine.pipeline.context)
        flag = "" if context in (None, "affirmed") else f"   {context}: '{text[parts['cueStart']['valueInteger']:end]}'" if "cueStart" in parts else f"   {context}"
        lines.append(f"        evidence: ...{text[max(0, start - 30):start]}[{text[start:end]}]{text[end:end + 30]}...".replace("\n", " ") + flag.replace("\n", " "))
    return lines


def print_suggestions(bundles: list[tuple[bytes | None, bytes]], notes_by_id: dict, show: int, label_space: set[str] | None = None) -> int:
    """Per note: the true codes (known for the demo's notes) and each suggestion with its evidence snippet.
    Codes outside the classifier's ``label_space`` (suggested by the description scorer) are marked ``*``;
    returns how many such suggestions there were (one is shown with its evidence even past ``show``)."""
    by_reference = {f"DocumentReference/{fhir_id(note_id)}": n for note_id, n in notes_by_id.items()}
    # a note with no suggestions has an empty Bundle: only its record key (the encounter) names it
    by_encounter = {f"Encounter/{fhir_id(n.record.encounter_id)}": n for n in notes_by_id.values() if n.record.encounter_id}
    hits = suggested = truth_total = 0
    outside: list[tuple[dict, object]] = []  # (Condition, note) of codes outside the label space
    shown_outside = False
    for i, (key, value) in enumerate(bundles):
        bundle = json.loads(value)
        conditions = [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Condition"]
        provenance = next((e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Provenance"), None)
        doc_ref = provenance["entity"][0]["what"]["reference"] if provenance else ""
        note = by_reference.get(doc_ref.split("/_history/")[0]) or by_encounter.get((key or b"").decode())
        truth = set(note.record.codes) if note else set()
        codes = {c["code"]["coding"][0]["code"] for c in conditions}
        hits += len(codes & truth)
        suggested += len(codes)
        truth_total += len(truth)
        if label_space is not None:
            outside += [(c, note) for c in conditions if c["code"]["coding"][0]["code"] not in label_space]
        if i >= show:
            continue
        name = doc_ref or (f"DocumentReference/{fhir_id(note.record.note_id)}" if note else "(unknown note)")
        print(f"\n{name}   true codes: {', '.join(sorted(truth)) or '-'}" + ("" if conditions else "   (no suggestions)"))
        for c in sorted(conditions, key=lambda c: -float(_extension(c, EXT_SCORE)[0]["valueDecimal"])):
            coding = c["code"]["coding"][0]
            score = float(_extension(c, EXT_SCORE)[0]["valueDecimal"])
            mark = "+" if coding["code"] in truth else " "
            new = label_space is not None and coding["code"] not in label_space
            shown_outside |= new
            print(f"  {mark}{'*' if new else ' '}{coding['code']:<8} {score:.3f}  {coding['display'][:60]}")
            if note is not None:
                print("\n".join(_evidence_lines(c, note.record.text, 3 if new else 2)))
    if suggested:
        print(f"\nover all {len(bundles)} notes: {hits}/{suggested} suggestions are true codes (precision "
              f"{hits / suggested:.2f}); {hits}/{truth_total} true codes suggested (recall {hits / max(truth_total, 1):.2f})")
    if label_space is not None:
        true_outside = sum(1 for c, n in outside if n is not None and c["code"]["coding"][0]["code"] in n.record.codes)
        print(f"* {len(outside)} suggestions of codes outside the classifier's training label space ({len(label_space)} codes), "
              f"{true_outside} of them true codes: found by the description scorer (titles, inclusion terms, training examples)")
        if outside and not shown_outside:
            c, note = next(((c, n) for c, n in outside if n is not None and c["code"]["coding"][0]["code"] in n.record.codes), outside[0])
            coding = c["code"]["coding"][0]
            print(f"  for example {coding['code']} {coding['display'][:60]}:")
            if note is not None:
                print("\n".join(_evidence_lines(c, note.record.text, 3)))
    return len(outside)

