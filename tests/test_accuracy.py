"""Top-k counting against a NumPy loop: ties count against the label, and an image whose
logits are not all finite is never a hit (a collapsed model scores 0, not 100 %)."""

import math

import numpy as np
import pytest

from dcnet_keras.accuracy import count_in_top_k, top_k_accuracies


def numpy_hits(labels, logits, k):
    hits = 0
    for row, label in zip(np.asarray(logits, np.float64), labels):
        if not all(math.isfinite(v) for v in row):
            continue
        others_at_least = sum(1 for j, v in enumerate(row) if j != label and v >= row[label])
        hits += others_at_least < k
    return hits


def cases():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 7)).astype("float32")
    logits[:5] = 0.0  # a collapsed model: constant logits
    logits[5, 2] = np.nan
    logits[6, :] = np.nan
    logits[7, 0] = np.inf
    logits[8, 3] = logits[8, 1]  # a tie
    labels = rng.integers(0, 7, 40)
    labels[8] = 1
    return labels.astype("int32"), logits


@pytest.mark.parametrize("k", [1, 2, 5, 7])
def test_count_in_top_k_matches_a_numpy_loop(k):
    labels, logits = cases()
    expected = numpy_hits(labels, logits, k)
    assert float(count_in_top_k(labels, logits, k)) == expected
    if k == 7:  # every image with finite logits
        assert expected == 40 - 3


def test_constant_logits_score_zero():
    labels = np.arange(10) % 3
    assert float(count_in_top_k(labels, np.zeros((10, 3), "float32"), 1)) == 0.0
    assert float(count_in_top_k(labels, np.full((10, 3), np.nan, "float32"), 1)) == 0.0


def test_top_k_accuracies_divides_by_the_images_seen():
    labels, logits = cases()
    batches = [(logits[i:i + 16], labels[i:i + 16]) for i in range(0, 40, 16)]
    accuracy, seen = top_k_accuracies(lambda x: x, batches, top_k=(1, 5))
    assert seen == 40
    assert accuracy[1] == pytest.approx(numpy_hits(labels, logits, 1) / 40)
    assert accuracy[5] == pytest.approx(numpy_hits(labels, logits, 5) / 40)
