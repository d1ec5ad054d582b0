"""Gradients of a layer on the TensorFlow or JAX backend, for backend-agnostic tests."""

import keras
import numpy as np
import pytest


def layer_gradients(layer, x, training, cotangent=None):
    """``(output, [d loss/d x, d loss/d w for w in layer.trainable_variables])`` as NumPy,
    with ``loss = sum(layer(x) * cotangent)`` (``cotangent`` defaults to ones).

    Skips the calling test on a backend other than TensorFlow and JAX.
    """
    backend = keras.backend.backend()
    variables = list(layer.trainable_variables)
    weight = 1.0 if cotangent is None else cotangent
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = layer(xt, training=training)
            loss = tf.reduce_sum(out * weight)
        grads = tape.gradient(loss, [xt] + variables)
        return np.asarray(out), [None if g is None else np.asarray(g) for g in grads]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def loss(xv, trainable):
            out, _ = layer.stateless_call(trainable, non_trainable, xv, training=training)
            return jnp.sum(out * weight), out

        (_, out), (gx, gw) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
            jnp.asarray(x), [v.value for v in variables])
        return np.asarray(out), [np.asarray(gx)] + [np.asarray(g) for g in gw]
    pytest.skip(f"gradient helper handles tensorflow and jax, not {backend!r}")
