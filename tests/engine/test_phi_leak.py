"""No PHI leaves the engine except in the outputs meant for it: notes full of PHI (the synthetic
generator's gold ``note.phi`` spans) and poison messages carrying PHI where parsers like to echo values
(raw text, dates, file names in the content type, URLs, oversized notes) run through ``python -m engine -v run``;
none of the PHI, nor any patient/encounter/document identifier, may appear in its logs (DEBUG level), its
/metrics and /readyz output, or the ``dlq.*`` headers it adds to dead letters. Also: SIGTERM -> exit 0."""

from __future__ import annotations

import re
import signal

import pytest

from tests.fixtures.docref import document_reference, from_note_record, to_bytes
from tests.fixtures.servers import EngineProcess, create_topic, engine_env, produce, read_topic

pytestmark = pytest.mark.servers
PLANTED = {
    "name": "Zebulon Quixwright",
    "mrn": "MRN 88123467",
    "birth_date": "the 3rd of Febtember 1931",
    "phone": "(617) 555-0199",
    "file": "Quixwright_Zebulon_88123467.pdf",
}


def _poison() -> list[bytes]:
    p = PLANTED
    long_text = f"Patient {p['name']} ({p['mrn']}), phone {p['phone']}. " + "Chest pain and cough. " * 1200
    return [
        f"Patient {p['name']} {p['mrn']} born {p['birth_date']}".encode(),  # not JSON at all
        to_bytes({**document_reference(f"Seen {p['name']}.", doc_id="phi-1"), "date": p["birth_date"]}),  # bad date
        to_bytes(document_reference(f"{p['name']} {p['mrn']}", doc_id="phi-2", content_type=f"application/pdf; name={p['file']}")),
        to_bytes(document_reference(None, doc_id="phi-3", url=f"https://ehr.example/Binary/{p['file']}")),
        to_bytes(document_reference(long_text, doc_id="phi-4")),  # over ICDCODER_ENGINE_MAX_NOTE_CHARS
        to_bytes(document_reference(f"{p['name']} has a cough.", doc_id="phi-5", subject=None)),
    ]


def _needles(notes, docs) -> set[str]:
    """PHI and identifiers worth searching for: short or purely numeric strings would match by chance."""
    out = set(PLANTED.values()) | {PLANTED["name"].split()[1]}
    for note in notes:
        out |= {note.record.text[s.start : s.end] for s in note.phi}
    for d in docs:
        out |= {d["id"], d["subject"]["reference"], d.get("context", {}).get("encounter", [{}])[0].get("reference", "")}
    return {s for s in out if len(s) >= 5 and not (re.fullmatch(r"[\d\W]+", s) and len(s) < 7)}


def _leaks(needles: set[str], text: str) -> list[str]:
    return sorted(n for n in needles if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text))


def test_no_phi_in_logs_metrics_or_dead_letter_headers(kafka_bootstrap, redis_url, unique_topic, tmp_path,
                                                       synthetic_notes, handbuilt_model_repo):
    notes = synthetic_notes[240:280]
    docs = [from_note_record(n.record) for n in notes]
    poison = _poison()
    messages = [(None, to_bytes(d), None) for d in docs] + [(None, v, None) for v in poison]
    for purpose in ("in", "out", "dlq", "audit"):
        create_topic(kafka_bootstrap, unique_topic(purpose), 1)
    produce(kafka_bootstrap, unique_topic("in"), messages)
    env = engine_env(kafka_bootstrap, redis_url, unique_topic, handbuilt_model_repo, engine_max_note_chars="20000")
    engine = EngineProcess(tmp_path, env, verbose=True)
    try:
        engine.wait_for(lambda: engine.metric("icdcoder_notes_total") + engine.metric("icdcoder_dead_letters_total") >= len(messages),
                        120, "every message handled")
        metrics = engine.metrics()
        ready = engine.http("/readyz")
        live = engine.http("/livez")
        engine.stop(signal.SIGTERM)
        assert engine.process.returncode == 0  # graceful shutdown
    finally:
        engine.stop()
    logs = engine.logs()
    assert "shutdown requested" in logs
    assert ready[0] == 200 and live[0] == 200, (ready, live)
    assert 'icdcoder_dead_letters_total{reason="too_large"} 1.0' in metrics

    dlq = read_topic(kafka_bootstrap, unique_topic("dlq"), expected=len(poison))
    assert sorted(r.value for r in dlq) == sorted(poison)
    dlq_headers = "\n".join(f"{k}={v.decode(errors='replace')}" for r in dlq for k, v in r.headers if k.startswith("dlq."))

    needles = _needles(notes, docs)
    assert len(needles) > 200
    # Control: the search does find PHI where it is meant to be (the dead letters' original bytes).
    assert PLANTED["name"] in _leaks(needles, "\n".join(r.value.decode("utf-8", "replace") for r in dlq))
    assert _leaks(needles, logs) == [], "PHI in the engine's logs"
    assert _leaks(needles, metrics + ready[1] + live[1]) == [], "PHI in /metrics or health output"
    assert _leaks(needles, dlq_headers) == [], "PHI in dead-letter headers"
