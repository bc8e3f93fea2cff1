"""Developer tooling, above both runtime packages and shipped in neither image (``python -m bench --help``):

- ``cli/``: the commands (``demo``, ``run`` for the benchmarks, ``deid-eval``);
- ``families/``: one module per benchmark family; ``common``, ``artifacts``, ``machine``, ``runner`` and
  ``report`` are what the families share (configuration, built models, machine facts, SUMMARY.md);
- ``devservers/``: real Kafka (Tansu), Redis and tritonserver on loopback for the tests, the demo and the
  benchmarks; ``docref`` builds the FHIR DocumentReference messages they send;
- ``deid_eval/``: de-identification measured against gold PHI spans.
"""
