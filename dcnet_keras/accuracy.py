"""Top-k counts and accuracies over a test pass (``keras.ops``: any backend)."""

from keras import ops


def count_in_top_k(labels, logits, k):
    """How many images have their label among the ``k`` largest logits, a float32 scalar.

    Image ``n`` with label ``y`` is a hit when its logits are all finite and fewer than
    ``k`` other classes score at least as high: ``#{j != y: logits[n, j] >= logits[n, y]}
    < k``.  A tie counts against the label, so a model whose logits are constant (or
    ``nan``) scores 0, not 100 % (``tf.math.in_top_k`` counts ties, and rows of ``nan``,
    as hits)."""
    logits = ops.cast(logits, "float32")
    logits = ops.reshape(logits, (-1, logits.shape[-1]))
    labels = ops.reshape(ops.cast(labels, "int32"), (-1, 1))
    label_logit = ops.take_along_axis(logits, labels, axis=1)
    at_least = ops.sum(ops.cast(ops.greater_equal(logits, label_logit), "int32"), axis=1) - 1
    finite = ops.all(ops.isfinite(logits), axis=1)
    hits = ops.logical_and(finite, ops.less(at_least, k))
    return ops.sum(ops.cast(hits, "float32"))


def top_k_accuracies(predict, dataset, top_k=(1, 5)):
    """``({k: accuracy}, images seen)`` of ``predict(images) -> logits`` over one pass of
    ``dataset`` (an iterable of ``(images, labels)`` batches): every image counted once,
    divided by the number of images seen.  ``k`` larger than the number of classes counts
    every image with finite logits."""
    correct = {k: 0.0 for k in top_k}
    seen = 0
    for images, labels in dataset:
        logits = predict(images)
        classes = int(logits.shape[-1])
        for k in top_k:
            correct[k] += float(count_in_top_k(labels, logits, min(k, classes)))
        seen += int(labels.shape[0])
    if seen == 0:
        raise ValueError("evaluate: the test set is empty")
    return {k: correct[k] / seen for k in top_k}, seen
