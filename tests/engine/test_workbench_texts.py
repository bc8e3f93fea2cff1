"""Note text from a FHIR server: ``FhirNoteTexts`` reads DocumentReference by id and version over real HTTP.

No FHIR server installs and runs offline here in a test's time (HAPI needs a Maven build of a web application;
Medplum's router needs its Node packages), so a small real HTTP server on loopback answers FHIR's read and
vread (``GET [base]/DocumentReference/<id>[/_history/<vid>]``) with 200, 404, 410 and 401 as a FHIR server does.
"""

from __future__ import annotations

import datetime as dt

import pytest

from bench.docref import document_reference
from engine.workbench.texts import FhirNoteTexts
from schemas.envelopes import NoteSuggestions
from schemas.settings import EngineSettings, WorkbenchSettings
from tests.fixtures.workbench import JsonServer

TOKEN = "fhir-server-token"
V1 = "Chest pain on exertion. Hypertension."
V2 = "Chest pain on exertion. Essential hypertension, treated."


class FhirServer:
    def __init__(self) -> None:
        # id -> version -> resource; the highest version is the current one; "gone" versions answer 410
        self.docs = {"d1": {"1": document_reference(V1, "d1", version_id="1"), "2": document_reference(V2, "d1", version_id="2")},
                     "d2": {"1": document_reference(V1, "d2", version_id="1")}}
        self.gone = {("d2", "1")}
        self.paths: list[str] = []
        self.http = JsonServer(self._route, "application/fhir+json")
        self.base = self.http.root + "/fhir"

    def _route(self, request):
        self.paths.append(request.path)
        missing = (404, {"resourceType": "OperationOutcome"})
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"resourceType": "OperationOutcome"}
        parts = request.path.strip("/").split("/")[1:]  # drop the base path "fhir"
        if len(parts) not in (2, 4) or parts[0] != "DocumentReference" or parts[1] not in self.docs:
            return missing
        versions = self.docs[parts[1]]
        if len(parts) == 2:
            return 200, versions[max(versions, key=int)]
        if (parts[1], parts[3]) in self.gone:
            return 410, {"resourceType": "OperationOutcome"}
        return (200, versions[parts[3]]) if parts[3] in versions else missing

    def stop(self) -> None:
        self.http.stop()


@pytest.fixture
def fhir():
    server = FhirServer()
    yield server
    server.stop()


def _texts(base: str, token: str = TOKEN) -> FhirNoteTexts:
    return FhirNoteTexts(EngineSettings(workbench=WorkbenchSettings(text_source="fhir", fhir_base_url=base, fhir_token=token)))


def _note(doc: str, version: str | None) -> NoteSuggestions:
    return NoteSuggestions(document_reference=f"DocumentReference/{doc}", document_version=version, suggestions=(),
                           processed_at=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))


def test_the_version_the_offsets_refer_to_is_read_by_vread(fhir):
    texts = _texts(fhir.base)
    got = texts.fetch(_note("d1", "1"))
    assert (got.status, got.text, got.message) == ("ok", V1, "") and fhir.paths[-1] == "/fhir/DocumentReference/d1/_history/1"
    assert texts.fetch(_note("d1", "2")).text == V2
    unversioned = texts.fetch(_note("d1", None))
    assert unversioned.status == "ok" and unversioned.text == V2 and "could not be checked" in unversioned.message
    texts.close()


def test_a_missing_version_wrong_credentials_or_no_server_are_said_plainly(fhir):
    texts = _texts(fhir.base)
    # version 1 of d2 was deleted; the current one is shown, unhighlighted, and the page says which it is
    fhir.docs["d2"]["3"] = document_reference(V2, "d2", version_id="3")
    got = texts.fetch(_note("d2", "1"))
    assert got.status == "version_mismatch" and got.text == V2 and "version 3" in got.message and "version 1" in got.message
    missing = texts.fetch(_note("d9", "1"))
    assert missing.status == "unavailable" and missing.text is None and "no such DocumentReference" in missing.message
    refused = _texts(fhir.base, token="wrong").fetch(_note("d1", "1"))
    assert refused.status == "unavailable" and "credentials" in refused.message
    fhir.stop()
    down = texts.fetch(_note("d1", "1"))
    assert down.status == "unavailable" and "could not be reached" in down.message
    for result in (got, missing, refused, down):
        assert TOKEN not in result.message
