"""Adversarial training's batch (the paper's Tables 7-8, "adversarial training").

Each step trains on a batch of ``B`` images whose first ``B - floor(B/2)`` stay clean
and whose last ``floor(B/2)`` are replaced by their FGSM images
``clip(x + eps * sign(d L / d x), 0, 255)``, crafted on the model as it is at that step:
``L`` is the attacks' loss, the mean plain softmax cross entropy over the clean batch
(:func:`~dcnet_keras.attacks.softmax_cross_entropy`), in training mode, with the batch's
statistics, and the crafting forward leaves every moving average
as it was (:func:`~dcnet_keras.moving_average.statistics_frozen`).  The update then
follows from the training-mode forward of the mixed batch, whose fit term is the mean
over all ``B`` images: for an even ``B``, ``fit = (fit_clean_half + fit_adversarial_half) / 2``.
Backend-neutral (``keras.ops``); the TensorFlow training step calls it inside its compiled
step (:class:`~dcnet_keras.train_step.TrainStep`'s ``adversarial_epsilon``).
"""

from keras import ops

from dcnet_keras.attacks import fgsm
from dcnet_keras.moving_average import statistics_frozen

def adversarial_mask(batch):
    """``[B]`` booleans: ``True`` for the last ``floor(B / 2)`` positions (the images
    replaced by adversarial ones)."""
    positions = ops.arange(batch)
    return ops.greater_equal(positions, batch - batch // 2)


def mixed_batch(model, images, labels, epsilon):
    """The batch adversarial training trains on: ``images`` with the last ``floor(B/2)``
    replaced by their FGSM images of strength ``epsilon`` (grey levels), crafted on
    ``model`` in training mode without a moving-average step (see the module docstring)."""
    with statistics_frozen():
        adversarial = fgsm(lambda x: model(x, training=True), images, labels, epsilon)
    adversarial = ops.stop_gradient(adversarial)
    mask = ops.reshape(adversarial_mask(ops.shape(images)[0]), (-1, 1, 1, 1))
    return ops.where(mask, adversarial, ops.cast(images, adversarial.dtype))
