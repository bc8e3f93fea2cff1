"""Evidence-context classification measured on hand-labelled sentences (``labelled``: the sets, how they were
sampled, scoring) and the context policy's effect on CodiEsp suggestions (``bench.families.context``).
Dev tooling: shipped in neither image."""
