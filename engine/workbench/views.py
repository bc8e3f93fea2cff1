"""What the API returns for an item: its codes with scores, thresholds, model versions, evidence offsets and the
claim's decisions. Plain dicts built from the worklist's ``ItemView``; never note text."""

from __future__ import annotations

from typing import Any

from engine.worklist.decisions import code_display
from engine.worklist.store import ItemView


def _model(m) -> dict[str, Any] | None:
    return None if m is None else {"name": m.name, "version": m.version, "code_set_release": m.code_set_release}


def item_summary(view: ItemView) -> dict[str, Any]:
    item = view.item
    return {
        "item_id": item.item_id,
        "status": item.status,
        "claimed_by": item.claimed_by,
        "lease_expires_at": item.lease_expires_at.isoformat() if item.lease_expires_at else None,
        "codes": len(item.codes),
        "notes": len(item.notes),
        "min_score": min(item.codes.values(), default=None),
        "model": _model(item.model),
        "created_at": item.created_at.isoformat(),
    }


def item_detail(view: ItemView) -> dict[str, Any]:
    """The summary plus, per suggested code, the strongest note's score and threshold and the models that
    suggested it; the coder's added codes; each note's suggestions with their evidence spans as stored (extra
    fields a newer engine writes on a span, such as a context label, pass through)."""
    item = view.item
    best: dict[str, tuple[float, float, str]] = {}
    models: dict[str, set[str]] = {}
    for n in item.notes:
        m = n.model or item.model
        for s in n.suggestions:
            if s.code not in best or s.score > best[s.code][0]:
                best[s.code] = (s.score, s.threshold, s.display)
            models.setdefault(s.code, set()).add(f"{m.name} v{m.version}")
    codes = [{"code": c, "display": best[c][2] if c in best else code_display(c) or "", "score": score,
              "threshold": best[c][1] if c in best else None, "models": sorted(models.get(c, ())),
              "decision": view.decisions.get(c), "reason": view.reasons.get(c)}
             for c, score in sorted(item.codes.items(), key=lambda kv: -kv[1])]
    added = [{"code": c, "display": code_display(c) or "", "decision": a, "reason": view.reasons.get(c)}
             for c, a in sorted(view.decisions.items()) if c not in item.codes]
    notes = [{"document_reference": n.document_reference, "document_version": n.document_version, "processed_at": n.processed_at.isoformat(),
              "model": _model(n.model or item.model), "source": n.source.model_dump() if n.source else None,
              "suggestions": [s.model_dump(mode="json") for s in n.suggestions]} for n in item.notes]
    undecided = [c for c in item.codes if c not in view.decisions]
    return {**item_summary(view), "subject": item.subject, "encounter": item.encounter, "updated_at": item.updated_at.isoformat(),
            "suggested": codes, "added": added, "notes": notes, "undecided": undecided, "ready_to_complete": not undecided}
