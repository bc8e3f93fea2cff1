"""FHIR as both sides read it: which fhir.resources classes a release uses (``release``), validation errors
described without PHI (``validation``), a note's text from its attachments (``attachment``) and NDJSON /
Bundle files of resources (``ndjson``)."""
