"""Top-k counts and accuracies over a test pass (TensorFlow only)."""

import tensorflow as tf


def count_in_top_k(labels, logits, k):
    """How many ``labels`` are among the ``k`` largest ``logits`` (any float dtype), float32."""
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32))


def top_k_accuracies(predict, dataset, top_k=(1, 5)):
    """``({k: accuracy}, images seen)`` of ``predict(images) -> logits`` over one pass of
    ``dataset``: every image counted once, divided by the number of images seen.
    ``k`` larger than the number of classes counts every image."""
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
