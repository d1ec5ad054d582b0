"""Cross-replica means for batch statistics (TensorFlow ``tf.distribute`` only).

With ``MirroredStrategy`` each replica sees ``global_batch / n`` examples; the
original trained on one device, so batch statistics must be taken over the
global batch for ``n`` replicas to train the same model.  On the JAX and
PyTorch backends, and outside a multi-replica TensorFlow context, these are the
plain local values.  (Keras's own synchronised batch norm is TensorFlow-only
for the same reason.)
"""

from keras import backend, ops


def _replica_context():
    if backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    return ctx


def global_mean(value):
    """Mean of ``value`` over replicas (equal per-replica batch sizes).

    ``value`` is already a mean over the local batch, so the mean over replicas
    is the mean over the global batch.
    """
    ctx = _replica_context()
    if ctx is None:
        return value
    import tensorflow as tf

    return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, value)


def _squared_difference(x, mean):
    """``(x - mean)^2`` with ``mean`` a constant.  On TensorFlow one
    ``SquaredDifference`` op, as ``tf.nn.moments`` (and so the original) forms it: the same
    float32 numbers as ``square(x - mean)``, but its gradient needs only ``x`` and
    ``mean``, where ``square(x - mean)`` keeps the full-size difference alive for the
    backward pass (0.8 GB of the CIFAR network's training step at batch 64)."""
    mean = ops.stop_gradient(mean)
    if backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.math.squared_difference(x, mean)
    return ops.square(x - mean)  # XLA (JAX) fuses the difference away


def moments(x, axes):
    """Biased batch mean and variance over ``axes`` (``tf.nn.moments``), global.

    ``var = mean((x - mean)^2)`` with the global mean, as one device computes it.
    """
    mean = global_mean(ops.mean(x, axis=axes))
    var = global_mean(ops.mean(_squared_difference(x, mean), axis=axes))
    return mean, var
