"""The original loss and the split of the total objective into its terms."""

import keras
from keras import ops

from dcnet_keras.regularizers import regularization_terms

#: label smoothing ``eps`` of the original ``loss2``.
LABEL_SMOOTHING = 0.01
#: added to the softmax before the log: ``log(softmax + 1e-4)``.
PROBABILITY_FLOOR = 1e-4


@keras.saving.register_keras_serializable(package="dcnet_keras")
def dcnet_cross_entropy(labels, logits):
    """The original ``loss2``: ``mean_batch(-sum_k t_k * log(softmax_k + 1e-4))``.

    ``t = 0.99 * onehot(labels) + 0.01 / K``; ``labels`` are integer class ids
    ``[N]`` (or ``[N, 1]``), ``logits`` ``[N, K]``.
    """
    num_classes = logits.shape[-1]
    logits = ops.reshape(logits, (-1, num_classes))
    probabilities = ops.softmax(logits, axis=-1) + PROBABILITY_FLOOR
    onehot = ops.one_hot(ops.reshape(ops.cast(labels, "int32"), (-1,)), num_classes,
                         dtype=probabilities.dtype)
    targets = (1.0 - LABEL_SMOOTHING) * onehot + LABEL_SMOOTHING / num_classes
    return ops.mean(-ops.sum(targets * ops.log(probabilities), axis=-1))


def loss_terms(model, labels, logits):
    """``{"fit", "reg", "orth", "loss"}``: cross entropy, weight decay,
    orthogonality and their sum, the original's ``fit``/``reg``/``orth`` log values."""
    terms = regularization_terms(model)
    terms["fit"] = dcnet_cross_entropy(labels, logits)
    terms["loss"] = terms["fit"] + terms["reg"] + terms["orth"]
    return terms
