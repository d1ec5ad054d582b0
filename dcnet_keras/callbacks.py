"""The original's weight projection, as a function and a Keras callback."""

import keras

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


def projection_due(iterations, interval=PROJECTION_INTERVAL):
    """Whether the update that made ``optimizer.iterations == iterations`` is followed
    by a projection: the original projects after update ``i`` (0-based) for
    ``i = 100, 200, ...``, i.e. ``iterations = i + 1`` with ``iterations % 100 == 1``.
    """
    if hasattr(iterations, "numpy"):  # a Keras or tf.distribute variable
        iterations = iterations.numpy()
    iterations = int(iterations)
    return iterations > 1 and iterations % interval == 1


class WeightProjection(keras.callbacks.Callback):
    """Projects decoupled filters after every ``interval``-th update, as the original.

    Keyed on ``model.optimizer.iterations`` (see :func:`projection_due`), so it is
    right across resumed runs.  Use with ``steps_per_execution=1``.
    """

    def __init__(self, interval=PROJECTION_INTERVAL):
        super().__init__()
        self.interval = int(interval)

    def on_train_batch_end(self, batch, logs=None):
        if projection_due(self.model.optimizer.iterations, self.interval):
            project_weights(self.model)
