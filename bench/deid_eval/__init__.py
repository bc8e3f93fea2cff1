"""De-identification measured against gold PHI spans: the scoring (``evaluation``), the gold sets
(``planting``), the tables and HTML page (``report``). Dev tooling: shipped in neither image."""
