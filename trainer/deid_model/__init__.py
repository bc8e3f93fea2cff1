"""The learned PHI recogniser of ``engine.deid``: a spaCy NER pipeline (CNN tok2vec, CPU, no torch at
serving time) trained on clinical sentences with PHI planted by ``faker`` in many locales and formats.

- ``fakes``: PHI values (names, places, facilities, dates, phones, IDs) from faker, one of ~50 locales each;
- ``templates``: the context sentences the values are planted into ("spoke with {NAME}", "{LAST}, {FIRST} MRN ...");
- ``corpus``: carrier text (MTSamples and CodiEsp-en sentences the rules find no PHI in) + planted sentences;
- ``train``: spaCy config, training, dev scores and the data card written beside the model.

The evaluation sets (``bench/deid_eval``: hand-written notes, a ``mimesis`` generator with its own templates)
are never imported here: what trains the recogniser never measures it.
"""
