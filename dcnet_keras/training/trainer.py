"""The original training iteration under any ``tf.distribute`` strategy.

Each replica takes its slice of the global batch (so every replica count sees
the same global batch), computes ``fit + reg + orth`` on a training-mode forward
whose batch statistics are all-reduced over the global batch, and applies the
gradient of ``loss / replicas``; the optimiser sums the replicas' gradients, so
N replicas make the update one device would make.  The values returned (fit,
reg, orth, batch top-1 and top-5 accuracy) are those before the update, as the
original logs them.
"""

import tensorflow as tf

from dcnet_keras.losses import dcnet_cross_entropy
from dcnet_keras.regularizers import regularization_terms
from dcnet_keras.train_step import count_in_top_k

METRICS = ("fit", "reg", "orth", "top1", "top5")


def top_k_accuracies(predict, dataset, top_k=(1, 5)):
    """``({k: accuracy}, images seen)`` of ``predict(images) -> logits`` over one pass of
    ``dataset``: every image counted once, divided by the number of images seen."""
    correct = {k: 0.0 for k in top_k}
    seen = 0
    for images, labels in dataset:
        logits = predict(images)
        for k in top_k:
            correct[k] += float(count_in_top_k(labels, logits, k))
        seen += int(labels.shape[0])
    if seen == 0:
        raise ValueError("evaluate: the test set is empty")
    return {k: correct[k] / seen for k in top_k}, seen


class Trainer:
    """``train_step(images, labels)`` and ``evaluate(dataset)`` for ``model``.

    ``model`` and ``optimizer`` must have been created under ``strategy.scope()``.
    """

    def __init__(self, model, optimizer, strategy, global_batch):
        replicas = strategy.num_replicas_in_sync
        if global_batch % replicas:
            raise ValueError(f"--batch_size: {global_batch} does not split over {replicas} "
                             "replicas; use a multiple of the replica count")
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy
        self.local_batch = global_batch // replicas
        self._train = tf.function(self._distributed_step)
        self._predict = tf.function(lambda x: model(x, training=False))

    def _replica_step(self, images, labels):
        ctx = tf.distribute.get_replica_context()
        start = ctx.replica_id_in_sync_group * self.local_batch
        images = images[start:start + self.local_batch]
        labels = labels[start:start + self.local_batch]
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            fit = dcnet_cross_entropy(labels, logits)
            terms = regularization_terms(self.model)
            loss = (fit + terms["reg"] + terms["orth"]) / ctx.num_replicas_in_sync
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply(grads, self.model.trainable_variables)
        top1 = count_in_top_k(labels, logits, 1) / self.local_batch
        top5 = count_in_top_k(labels, logits, min(5, logits.shape[-1])) / self.local_batch
        return fit, terms["reg"], terms["orth"], top1, top5

    def _distributed_step(self, images, labels):
        per_replica = self.strategy.run(self._replica_step, args=(images, labels))
        mean = tf.distribute.ReduceOp.MEAN
        return {name: self.strategy.reduce(mean, value, axis=None)
                for name, value in zip(METRICS, per_replica)}

    def train_step(self, images, labels):
        """One update on the global batch; returns ``{fit, reg, orth, top1, top5}`` tensors."""
        return self._train(images, labels)

    def evaluate(self, dataset, top_k=(1, 5)):
        """``{k: top-k accuracy}`` over one pass of ``dataset`` (see :func:`top_k_accuracies`)."""
        return top_k_accuracies(self._predict, dataset, top_k)[0]
