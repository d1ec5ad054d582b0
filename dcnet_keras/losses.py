"""The original loss and the split of the total objective into its terms.

Two forms of the original ``loss2`` (label smoothing 0.01, softmax floor 1e-4):

* :func:`dcnet_cross_entropy` ``(labels, logits[, sample_weight])``: the batch mean, one
  number; what :func:`loss_terms`, the training step and the TF1 fixture tests use.
* :class:`DCNetCrossEntropy`: the same loss as a ``keras.losses.Loss`` whose ``call``
  returns the per-example losses, so Keras applies ``sample_weight`` (and so
  ``class_weight``) per example and then its reduction.  **Give this one to
  ``model.compile``**: Keras multiplies a function's single number by the weights, so
  ``compile(loss=dcnet_cross_entropy)`` with weights 1 x 8 + 0 x 8 gives the unweighted
  mean x 0.5 instead of the mean over the first 8 examples x 0.5.
"""

import keras
from keras import ops

from dcnet_keras.regularizers import regularization_terms

#: label smoothing ``eps`` of the original ``loss2``.
LABEL_SMOOTHING = 0.01
#: added to the softmax before the log: ``log(softmax + 1e-4)``.
PROBABILITY_FLOOR = 1e-4


def per_example_cross_entropy(labels, logits):
    """``l_n = -sum_k t_nk * log(softmax_k(logits_n) + 1e-4)``, shape ``[N]``.

    ``t = 0.99 * onehot(labels) + 0.01 / K``; ``labels`` are integer class ids
    ``[N]`` or ``[N, 1]`` (any numeric dtype; cast to int32), ``logits`` ``[N, K]``
    (float16 / bfloat16 logits are cast to float32 first).
    """
    num_classes = logits.shape[-1]
    if logits.dtype in ("float16", "bfloat16"):  # a mixed-precision model's half logits
        logits = ops.cast(logits, "float32")
    logits = ops.reshape(logits, (-1, num_classes))
    probabilities = ops.softmax(logits, axis=-1) + PROBABILITY_FLOOR
    onehot = ops.one_hot(ops.reshape(ops.cast(labels, "int32"), (-1,)), num_classes,
                         dtype=probabilities.dtype)
    targets = (1.0 - LABEL_SMOOTHING) * onehot + LABEL_SMOOTHING / num_classes
    return -ops.sum(targets * ops.log(probabilities), axis=-1)


@keras.saving.register_keras_serializable(package="dcnet_keras")
def dcnet_cross_entropy(labels, logits, sample_weight=None):
    """The original ``loss2``: ``mean_n(l_n)`` (see :func:`per_example_cross_entropy`).

    With ``sample_weight`` ``w`` (``[N]``, ``[N, 1]`` or a scalar), Keras's default
    ``"sum_over_batch_size"`` weighted mean: ``sum_n(w_n * l_n) / N`` (divided by the
    batch size, not by ``sum(w)``), the value ``DCNetCrossEntropy()(labels, logits, w)``
    gives.  For ``model.compile`` use :class:`DCNetCrossEntropy` (see the module
    docstring); without weights the two are the same number.
    """
    losses = per_example_cross_entropy(labels, logits)
    if sample_weight is None:
        return ops.mean(losses)
    weights = ops.cast(sample_weight, losses.dtype)
    if len(weights.shape) > 1:
        weights = ops.reshape(weights, (-1,))
    weighted = losses * weights
    return ops.sum(weighted) / ops.cast(ops.shape(weighted)[0], losses.dtype)


@keras.saving.register_keras_serializable(package="dcnet_keras")
class DCNetCrossEntropy(keras.losses.Loss):
    """The original ``loss2`` as a Keras loss: ``call`` returns ``l_n`` per example.

    ``l_n = -sum_k t_nk * log(softmax_k + 1e-4)``, ``t = 0.99 * onehot + 0.01 / K``;
    ``y_true`` integer class ids ``[N]`` or ``[N, 1]``, ``y_pred`` logits ``[N, K]``.
    Keras then weights by ``sample_weight`` / ``class_weight`` and reduces; the default
    ``reduction="sum_over_batch_size"`` is ``sum_n(w_n * l_n) / N``, without weights the
    original's mean.  Other reductions: ``"sum"``, ``"mean_with_sample_weight"``
    (divides by ``sum(w)``), ``"none"``.  Computed in ``dtype`` (default
    ``keras.config.floatx()``, float32 also under a mixed-precision policy).
    """

    def __init__(self, reduction="sum_over_batch_size", name="dcnet_cross_entropy",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return per_example_cross_entropy(y_true, y_pred)


def loss_terms(model, labels, logits):
    """``{"fit", "reg", "orth", "loss"}``: cross entropy, weight decay,
    orthogonality and their sum, the original's ``fit``/``reg``/``orth`` log values."""
    terms = regularization_terms(model)
    terms["fit"] = dcnet_cross_entropy(labels, logits)
    terms["loss"] = terms["fit"] + terms["reg"] + terms["orth"]
    return terms
