"""Step 4: fine-tuning an ICD coder (paper 4.2.2): note batches (``data``), the run (``train``), thresholds."""
