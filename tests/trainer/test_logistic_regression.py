"""The TF-IDF baseline fits its per-code models in a thread pool: the result must not depend on the threads."""

import numpy as np

from trainer.models.logistic_regression import LogisticRegressionCoder


def test_threaded_fit_gives_the_same_model():
    rng = np.random.default_rng(0)
    words = ["fever", "cough", "diabetes", "insulin", "fracture", "cast", "rash", "itch", "stable", "follow"]
    texts = [" ".join(rng.choice(words, 12)) for _ in range(40)]
    targets = np.stack([[("diabetes" in t), ("fracture" in t), ("rash" in t and "itch" in t), False] for t in texts]).astype(np.int64)
    one = LogisticRegressionCoder(max_features=100).fit(texts, targets, progress=False, threads=1)
    three = LogisticRegressionCoder(max_features=100).fit(texts, targets, progress=False, threads=3)
    assert three.estimators[3] == 0.0  # a code without positives predicts that constant
    np.testing.assert_array_equal(one.predict_proba(texts), three.predict_proba(texts))
    probs = three.predict_proba(["diabetes on insulin", "cast for the fracture"])
    assert probs[0, 0] > probs[1, 0] and probs[1, 1] > probs[0, 1]
