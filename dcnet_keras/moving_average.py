"""TF1 ``ExponentialMovingAverage`` of a tensor, as a set of layer weights.

The original keeps the batch-norm moments and the mean patch norm ``m`` in
``tf.train.ExponentialMovingAverage(decay=0.999)``: the shadow variable starts
at **0** and is updated as ``shadow -= (shadow - value) * (1 - decay)`` (with
``1 - decay`` formed in float32), with **no** zero-debiasing (the TF >= 1.0
default).  After ``t`` updates it holds ``sum_i (1-d) d^(t-i) v_i``, far below
the batch values early in training; inference uses the shadow as it is.

``zero_debias=True`` is the option for short experiments: a biased
accumulator and a step counter are kept as TF's ``zero_debias=True`` does, and
the shadow holds ``biased / (1 - d^t)``.

:func:`statistics_frozen` makes the training-mode forwards called within it leave every
moving average as it is (batch statistics are still used): the forward that crafts an
adversarial batch in adversarial training is not a step of the averages.
"""

import contextlib
import threading

from keras import ops

from dcnet_keras.operators import one_minus_decay


_FROZEN = threading.local()


@contextlib.contextmanager
def statistics_frozen():
    """Within the block (while a forward is run or traced), :meth:`MovingAverage.update`
    changes nothing: training-mode forwards use batch statistics and leave the moving
    averages as they were."""
    previous = getattr(_FROZEN, "active", False)
    _FROZEN.active = True
    try:
        yield
    finally:
        _FROZEN.active = previous


def frozen():
    """Whether :func:`statistics_frozen` is active in this thread."""
    return getattr(_FROZEN, "active", False)


class MovingAverage:
    """The weights of one moving average, created on ``layer`` in its ``build``.

    Attributes ``shadow`` (what inference reads), and with ``zero_debias``
    ``biased`` and ``steps``; the layer also holds them as ``<name>_shadow``,
    ``<name>_biased`` and ``<name>_steps``.
    """

    def __init__(self, layer, name, shape, decay, zero_debias):
        self.decay = float(decay)
        self.zero_debias = bool(zero_debias)
        self._rate = one_minus_decay(decay)

        def add(suffix, weight_shape):
            variable = layer.add_weight(
                name=name + suffix, shape=weight_shape, initializer="zeros",
                trainable=False, autocast=False, aggregation="mean")
            # An attribute of the layer, so that attribute-based tracking
            # (tf.train.Checkpoint) saves it, not only layer.weights (.keras).
            setattr(layer, f"{name}{suffix or '_shadow'}", variable)
            return variable

        self.shadow = add("", shape)
        if self.zero_debias:
            self.biased = add("_biased", shape)
            self.steps = add("_steps", ())

    def update(self, value):
        """One TF1 ``ema.apply([value])`` (nothing within :func:`statistics_frozen`)."""
        if frozen():
            return
        value = ops.cast(ops.reshape(value, self.shadow.shape), self.shadow.dtype)
        if not self.zero_debias:
            self.shadow.assign(self.shadow - (self.shadow - value) * self._rate)
            return
        biased = self.biased - (self.biased - value) * self._rate
        steps = self.steps + 1.0
        self.biased.assign(biased)
        self.steps.assign(steps)
        self.shadow.assign(biased / (1.0 - ops.power(self.decay, steps)))

    @property
    def value(self):
        return self.shadow
