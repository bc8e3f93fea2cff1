"""HL7 v2 ER7 messages built with python-hl7 (the library the engine parses with): MDM^T02/T04/T06/T08/T10/T11
documents and ORU^R01 reports with FT/TX lines or an ED attachment, as an interface engine sends them.
Values are escaped by the library (``Message.escape``), so text with ``| ^ & ~ \\`` or non-ASCII characters
travels as a real feed carries it. Used by the tests and the demo."""

from __future__ import annotations

import base64
from typing import Iterable

import hl7

MSH = "MSH|^~\\&|EHR|GENERAL_HOSPITAL|ICDCODER|GENERAL_HOSPITAL|{when}||{kind}^{event}^{structure}|{control}|P|2.5"


class MessageBuilder:
    """One ER7 message; ``segment(name, {field: value | [repetitions] | {component: value}})``."""

    def __init__(self, kind: str, event: str, control_id: str, when: str = "20260301101500", structure: str | None = None) -> None:
        self.msg = hl7.parse(MSH.format(when=when, kind=kind, event=event, structure=structure or f"{kind}_{event}", control=control_id))

    def segment(self, name: str, fields: dict) -> "MessageBuilder":
        seg = self.msg.create_segment([self.msg.create_field([name])])
        self.msg.append(seg)
        for number, value in sorted(fields.items()):
            if isinstance(value, dict):  # components (values may be (sub1, sub2) tuples for subcomponents)
                for comp, part in value.items():
                    subs = part if isinstance(part, tuple) else (part,)
                    for k, sub in enumerate(subs, 1):
                        seg.assign_field(self.msg.escape(sub), number, 1, comp, k if len(subs) > 1 else None)
            elif isinstance(value, list):  # repetitions
                for r, rep in enumerate(value, 1):
                    seg.assign_field(self.msg.escape(rep), number, r)
            else:
                seg.assign_field(self.msg.escape(value), number)
        return self

    def set(self, segment: str, field: int, value: str) -> "MessageBuilder":
        """Overwrite one field of an existing segment (raw, unescaped: for malformed-message tests)."""
        self.msg.segment(segment).assign_field(value, field)
        return self

    def drop(self, segment: str) -> "MessageBuilder":
        self.msg[:] = [s for s in self.msg if str(s[0]) != segment]
        return self

    def text(self) -> str:
        return str(self.msg)

    def bytes(self) -> bytes:
        return str(self.msg).encode("utf-8")


def patient_fields(mrn: str = "MRN-1001", authority: str = "GENHOSP") -> dict:
    return {1: "1", 3: {1: mrn, 4: authority, 5: "MR"}, 5: {1: "DOE", 2: "JANE"}, 7: "19600101", 8: "F"}


def visit_fields(visit: str = "V-2001", authority: str = "GENHOSP") -> dict:
    return {1: "1", 2: "I", 19: {1: visit, 4: authority}}


def mdm(event: str, document: str, lines: Iterable[str] = (), *, parent: str | None = None, control_id: str | None = None,
        mrn: str = "MRN-1001", visit: str | None = "V-2001", completion: str = "AU", availability: str = "AV",
        doc_type: str = "DS", value_type: str = "TX", authority: str = "GENHOSP", namespace: str = "EHR",
        origination: str = "20260301095500") -> MessageBuilder:
    """MDM^<event>: MSH, EVN, PID, PV1, TXA, one OBX per line (value type TX, or FT). ``authority`` assigns PID-3 and
    PV1-19, ``namespace`` TXA-12/13 (empty: the identifiers alone)."""
    b = MessageBuilder("MDM", event, control_id or f"{document}-{event}")
    b.segment("EVN", {1: event, 2: "20260301101500"}).segment("PID", patient_fields(mrn, authority))
    if visit:
        b.segment("PV1", visit_fields(visit, authority))
    txa = {1: "1", 2: doc_type, 3: "TX", 4: "20260301100000", 6: origination, 12: {1: document, 2: namespace},
           17: completion, 19: availability}
    if parent:
        txa[13] = {1: parent, 2: namespace}
    b.segment("TXA", txa)
    for n, line in enumerate(lines, 1):
        b.segment("OBX", {1: str(n), 2: value_type, 3: {1: "NOTE"}, 5: line, 11: "F"})
    return b


def from_note_record(record) -> MessageBuilder:
    """MDM^T02 for a training/synthetic note (``schemas`` NoteRecord), with the identifiers alone (no authority or
    namespace), so its references are the ones ``bench.docref.from_note_record`` gives the same note."""
    return mdm("T02", record.note_id, record.text.split("\n"), mrn=record.patient_id or "unknown", visit=record.encounter_id or None,
               authority="", namespace="", origination=record.date.strftime("%Y%m%d") if record.date else "20260301")


def oru_text(report: str, lines: Iterable[str], *, value_type: str = "FT", mrn: str = "MRN-1001", status: str = "F") -> MessageBuilder:
    """ORU^R01 with one OBR and its report text as OBX lines (FT keeps formatting escapes such as \\.br\\)."""
    b = _oru(report, mrn, status)
    for n, line in enumerate(lines, 1):
        b.segment("OBX", {1: str(n), 2: value_type, 3: {1: "18842-5", 3: "LN"}, 5: line, 11: status})
    return b


def oru_ed(report: str, data: bytes, *, kind: str = "TEXT", subtype: str = "PLAIN", mrn: str = "MRN-1001", status: str = "F",
           encoding: str = "Base64", raw_data: str | None = None) -> MessageBuilder:
    """ORU^R01 whose report is an ED attachment (OBX-5 = source ^ type ^ subtype ^ encoding ^ data)."""
    b = _oru(report, mrn, status)
    payload = raw_data if raw_data is not None else base64.b64encode(data).decode("ascii")
    b.segment("OBX", {1: "1", 2: "ED", 3: {1: "18842-5", 3: "LN"}, 5: {1: "EHR", 2: kind, 3: subtype, 4: encoding, 5: payload}, 11: status})
    return b


def _oru(report: str, mrn: str, status: str) -> MessageBuilder:
    b = MessageBuilder("ORU", "R01", f"{report}-R01")
    b.segment("PID", patient_fields(mrn)).segment("PV1", visit_fields())
    b.segment("OBR", {1: "1", 3: {1: report, 2: "LAB"}, 4: {1: "18842-5", 2: "Discharge summary", 3: "LN"}, 7: "20260301090000", 25: status})
    return b
