"""The description scorer: ranks every billable ICD-10-CM code (and every code of a label space) for a note by
the similarity of the note's sentences to the code's title and inclusion terms, with the best sentence as
evidence. It covers the codes a trained classifier never saw; ``schemas.fusion`` combines the two.

- ``catalogue``: the candidate codes and their terms, from the ICD-10-CM 2026 tabular list;
- ``model``: the sentence encoder (all-MiniLM-L6-v2, mean pooling, unit length) and the scorer graph
  (encoder + term matrix + top-k), which is what ``trainer export`` writes to ONNX;
- ``build``: the term matrix (embedded once, cached) and the scorer directory of a run;
- ``select``: fusion weights and the suggestion threshold chosen on the selection split.
"""
