"""Step 5: evaluation as in the paper (``evaluation``, ``metrics``) and explanations (``explain``)."""
