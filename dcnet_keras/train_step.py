"""One original training iteration, with TensorFlow (``tf.function`` + ``GradientTape``).

``loss = fit + reg + orth`` on a training-mode forward (batch statistics, moving
averages updated in the same forward, as the original's ``tf.cond`` branch
does), gradients of the total, one optimiser update.  Returns the terms and the
batch accuracy computed before the update, as the original logs them.
"""

import tensorflow as tf

from dcnet_keras.losses import loss_terms


def gradients(model, images, labels):
    """``(terms, logits, grads)`` of one training-mode forward; nothing is updated
    but the moving averages (as in the original, the forward itself updates them)."""
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        terms = loss_terms(model, labels, logits)
    grads = tape.gradient(terms["loss"], model.trainable_variables)
    return terms, logits, grads


def count_in_top_k(labels, logits, k):
    """How many ``labels`` are among the ``k`` largest ``logits`` (any float dtype), float32."""
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32))


def top_k_accuracy(labels, logits, k=1):
    """Fraction of ``labels`` among the ``k`` largest ``logits``."""
    return count_in_top_k(labels, logits, k) / tf.cast(tf.shape(logits)[0], tf.float32)


def make_train_step(model, optimizer, jit_compile=False):
    """A compiled ``step(images, labels) -> {"fit", "reg", "orth", "loss", "acc"}``."""

    def step(images, labels):
        terms, logits, grads = gradients(model, images, labels)
        optimizer.apply(grads, model.trainable_variables)
        terms["acc"] = top_k_accuracy(labels, logits)
        return terms

    return tf.function(step, jit_compile=jit_compile)
