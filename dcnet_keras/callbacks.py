"""The original's weight projection, as a function and a Keras callback."""

import keras
from keras import ops

from dcnet_keras.layers.decoupled_conv import DecoupledConv2D
from dcnet_keras.layers.walk import all_layers

#: the original projects every 100 iterations.
PROJECTION_INTERVAL = 100


def decoupled_layers(model):
    """Every :class:`DecoupledConv2D` in ``model``, nested models included."""
    return [layer for layer in all_layers(model) if isinstance(layer, DecoupledConv2D)]


def project_weights(model):
    """Assign ``w <- w / sqrt(sum w^2 + 1e-4)`` to every projectable decoupled filter.

    The original's ``wp_op`` / ``assign_op``; optimiser slots are untouched;
    weighted operators are skipped (their filter norm is part of the function).
    """
    for layer in decoupled_layers(model):
        if layer.projectable:
            layer.project_filter()


def _as_int(iterations):
    if hasattr(iterations, "numpy"):  # a Keras or tf.distribute variable
        iterations = iterations.numpy()
    return int(iterations)


def projection_due(iterations, interval=PROJECTION_INTERVAL):
    """Whether the update that made ``optimizer.iterations == iterations`` is followed
    by a projection: the original projects after update ``i`` (0-based) for
    ``i = 100, 200, ...``, i.e. ``iterations = i + 1`` with ``iterations % 100 == 1``.
    """
    iterations = _as_int(iterations)
    return iterations > 1 and iterations % interval == 1


def projection_due_tensor(iterations, interval=PROJECTION_INTERVAL):
    """:func:`projection_due` as a boolean tensor, for use inside a compiled step (no
    read back to the host): ``iterations > 1 and iterations % interval == 1``."""
    iterations = ops.convert_to_tensor(iterations)
    return ops.logical_and(ops.greater(iterations, 1),
                           ops.equal(ops.mod(iterations, interval), 1))


def projection_crossed(previous, current, interval=PROJECTION_INTERVAL):
    """Whether some ``i`` with ``previous < i <= current`` is :func:`projection_due`:
    the updates ``previous + 1 .. current`` (one execution of ``fit``) crossed a
    projection point ``101, 201, ...``.  ``previous = current - 1`` is
    :func:`projection_due` ``(current)``."""
    previous, current = _as_int(previous), _as_int(current)
    first = max(previous + 1, 2)  # iterations == 1 is never due
    if first > current:
        return False
    # the smallest i >= first with i % interval == 1
    due = first + (1 - first) % interval
    return due <= current


class WeightProjection(keras.callbacks.Callback):
    """Projects decoupled filters (:func:`project_weights`) after the updates that make
    ``optimizer.iterations`` 101, 201, ..., as the original (``interval`` 100).

    Keyed on ``model.optimizer.iterations``, so it is right across resumed runs.  With
    ``compile(steps_per_execution=k)`` Keras calls ``on_train_batch_end`` once per ``k``
    updates; the callback keeps the last iteration count it saw and projects at the
    first batch end at or after each crossing (:func:`projection_crossed`), i.e. after
    the update that ends the execution holding update 101 (201, ...), not exactly
    after it.  With ``k = 1`` that is exactly after update 101, as the original.
    """

    def __init__(self, interval=PROJECTION_INTERVAL):
        super().__init__()
        self.interval = int(interval)
        self._last_iterations = None

    def on_train_begin(self, logs=None):
        self._last_iterations = _as_int(self.model.optimizer.iterations)

    def on_train_batch_end(self, batch, logs=None):
        current = _as_int(self.model.optimizer.iterations)
        previous = current - 1 if self._last_iterations is None else self._last_iterations
        self._last_iterations = current
        if projection_crossed(previous, current, self.interval):
            project_weights(self.model)
