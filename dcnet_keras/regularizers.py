"""The original's two regularisers, as Keras regularizers carried by ``model.losses``.

* :class:`TF1WeightDecay` ``wd * sum(w^2) / 2`` (TF1 ``l2_regularizer``), on plain
  convolutions and batch-norm gamma/beta; ``wd`` is 5e-4 on CIFAR, 1e-4 on ImageNet.
* :class:`FilterOrthogonality` ``1e-5 * sum((W^T W - I)^2) / 2`` on every
  decoupled filter (columns normalised; see :func:`operators.orthogonality_penalty`).

:func:`regularization_terms` splits the total into the two for logging.
"""

import keras
from keras import ops

from dcnet_keras import operators
from dcnet_keras.validation import non_negative_float


@keras.saving.register_keras_serializable(package="dcnet_keras")
class TF1WeightDecay(keras.regularizers.Regularizer):
    """``wd * sum(w^2) / 2``: TF1 ``tf.contrib.layers.l2_regularizer(wd)``.

    (Keras's ``L2(l)`` is ``l * sum(w^2)``, i.e. ``L2(wd / 2)``.)
    """

    def __init__(self, wd):
        self.wd = non_negative_float("wd", wd)

    def __call__(self, x):
        return operators.weight_decay_penalty(x, self.wd)

    def get_config(self):
        return {"wd": self.wd}


@keras.saving.register_keras_serializable(package="dcnet_keras")
class FilterOrthogonality(keras.regularizers.Regularizer):
    """``strength * sum((W^T W - I)^2) / 2`` over the normalised filter columns.

    The original's ``_add_orthogonal_constraint`` (``orth_constraint`` collection).
    """

    def __init__(self, strength=1e-5):
        self.strength = non_negative_float("strength", strength)

    def __call__(self, x):
        return operators.orthogonality_penalty(x, self.strength)

    def get_config(self):
        return {"strength": self.strength}


def regularization_terms(model):
    """``{"reg": weight decay, "orth": orthogonality}`` of ``model``'s weights.

    The same regularizer objects that put these terms in ``model.losses``; their
    sum equals ``sum(model.losses)``.  Each is 0.0 where the model has none.
    """
    reg, orth = [], []
    for variable in model.trainable_weights:
        regularizer = getattr(variable, "regularizer", None)
        if isinstance(regularizer, FilterOrthogonality):
            orth.append(regularizer(variable))
        elif regularizer is not None:
            reg.append(regularizer(variable))

    def total(terms):
        return ops.sum(ops.stack(terms)) if terms else ops.convert_to_tensor(0.0)

    return {"reg": total(reg), "orth": total(orth)}
