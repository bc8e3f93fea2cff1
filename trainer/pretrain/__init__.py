"""Step 3: masked-language-model pretraining (paper 3.2): the corpus and MLM batches (``data``), the run (``train``)."""
