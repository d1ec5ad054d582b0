"""The gradient of a scalar function with respect to its input, on the Keras backend.

``input_gradient(loss_fn, x) = d loss_fn(x) / d x``, same shape as ``x``: the one piece of
the attacks (:mod:`dcnet_keras.attacks`) that ``keras.ops`` cannot express.  It dispatches
on ``keras.backend.backend()`` and imports that backend's library only when called, so
this module imports with TensorFlow absent:

* ``tensorflow``: ``tf.GradientTape`` watching ``x`` (also inside a ``tf.function``: no
  value is read back to the host);
* ``jax``: ``jax.grad`` (also inside ``jax.jit``), with ``loss_fn`` run in a fresh
  ``keras.StatelessScope``, so a training-mode forward's variable updates (batch-norm
  moving averages, seed generators) are discarded instead of leaking JAX tracers into the
  variables; the variables are read as they are stored (the adversarial training step,
  which crafts on traced weights, is TensorFlow's);
* ``torch``: ``torch.autograd.grad`` on a detached copy of ``x`` that requires grad.

A ``loss_fn`` that does not depend on ``x`` has gradient zero.
"""

import keras

BACKENDS = ("tensorflow", "jax", "torch")


def _check_scalar(loss):
    shape = tuple(getattr(loss, "shape", ()))
    if shape:
        raise ValueError(f"loss_fn: expected a scalar loss, received shape {shape}")
    return loss


def input_gradient(loss_fn, x):
    """``d loss_fn(x) / d x`` for a scalar-valued ``loss_fn``, a backend tensor shaped as ``x``.

    ``x``: a NumPy array or a tensor of the backend (kept in its dtype; the attacks pass
    float32).  Raises a one-line ``ValueError`` for a backend other than
    ``tensorflow``, ``jax`` and ``torch``, and for a ``loss_fn`` whose value is not a
    scalar.
    """
    if not callable(loss_fn):
        raise ValueError(f"loss_fn: expected a function x -> scalar loss, received {loss_fn!r}")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = _check_scalar(loss_fn(x))
        return tape.gradient(loss, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def stateless(value):
            with keras.StatelessScope():
                return _check_scalar(loss_fn(value))

        return jax.grad(stateless)(jnp.asarray(x))
    if backend == "torch":
        import torch

        x = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        with torch.enable_grad():
            loss = _check_scalar(loss_fn(x))
            (gradient,) = torch.autograd.grad(loss, x, allow_unused=True)
        return torch.zeros_like(x) if gradient is None else gradient
    raise ValueError(f"input_gradient: backend {backend!r} is not supported; expected one of "
                     f"{', '.join(BACKENDS)} (KERAS_BACKEND)")
