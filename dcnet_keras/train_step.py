"""The one training iteration of this project (TensorFlow: ``tf.function`` + ``GradientTape``).

The training scripts, the TF1 fixture trajectory tests, the benchmarks and
users' own loops all run :class:`TrainStep`::

    step = TrainStep(model, optimizer)                 # one device: the default strategy
    for images, labels in dataset:
        values = step(images, labels)                  # {"fit", "reg", "orth", "loss", "top1", "top5"}

One step is the original's iteration: a training-mode forward (batch
statistics; the moving averages take their step in the same forward, as the
original's ``tf.cond`` branch does), ``loss = fit + reg + orth`` through
:func:`dcnet_keras.losses.loss_terms`, the gradient of the total, one optimiser
update, then the weight projection when it is due (after updates 101, 201, ...;
:func:`dcnet_keras.callbacks.projection_due`), decided inside the compiled step so that
nothing is read back to the host: a step returns tensors and waits for nothing.  The values returned are those
computed before the update, as the original logs them.

Under a ``tf.distribute`` strategy (create the model and the optimiser under
``strategy.scope()``) each replica takes its slice of the global batch, the
batch statistics are all-reduced over the global batch, and each replica
applies the gradient of ``loss / replicas``; the optimiser sums the replicas'
gradients, so N replicas make the update one device would make.
"""

import tensorflow as tf

from dcnet_keras.accuracy import count_in_top_k
from dcnet_keras.adversarial import mixed_batch
from dcnet_keras.callbacks import project_weights, projection_due_tensor
from dcnet_keras.filter_gradients import decoupled_filter_positions, weight_filter_gradients
from dcnet_keras.losses import loss_terms

#: what a step returns.
VALUES = ("fit", "reg", "orth", "loss", "top1", "top5")


def gradients(model, images, labels, scale=1.0, optimizer=None):
    """``(terms, logits, grads)`` of one training-mode forward: ``terms`` from
    :func:`~dcnet_keras.losses.loss_terms`, ``grads`` of ``scale * terms["loss"]``
    for ``model.trainable_variables``, times ``optimizer``'s loss scale when it has one
    (``keras.optimizers.LossScaleOptimizer`` for float16: its ``apply`` divides the
    gradients by it again).  Nothing is updated but the moving averages (as in the
    original, the forward itself updates them)."""
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        terms = loss_terms(model, labels, logits)
        objective = terms["loss"] * scale if scale != 1.0 else terms["loss"]
        if optimizer is not None:
            objective = optimizer.scale_loss(objective)
    return terms, logits, tape.gradient(objective, model.trainable_variables)


class TrainStep:
    """``step(images, labels) -> {fit, reg, orth, loss, top1, top5}`` (scalar tensors).

    Args:
      model, optimizer: created under ``strategy.scope()`` when a strategy is given.
      strategy: a ``tf.distribute`` strategy; default the current one (one device).
      project: apply the original's weight projection after updates 101, 201, ...
        (``False``: "standard gradients" of the paper's Table 1).
      weighted_gradients: multiply every decoupled filter's gradient by its norm before
        the update (:mod:`dcnet_keras.filter_gradients`; Table 1's "weighted gradients").
      adversarial_epsilon: adversarial training: each replica's batch has its last half
        replaced by FGSM images of this strength crafted on the model at this step
        (:func:`dcnet_keras.adversarial.mixed_batch`); ``None``: clean batches.  The
        values returned (fit, accuracies) are those of the mixed batch.
      jit_compile: compile the step with XLA.

    Under a mixed-precision policy build the model under it; for float16 wrap the
    optimiser in ``keras.optimizers.LossScaleOptimizer`` (the step scales the loss).
    """

    def __init__(self, model, optimizer, strategy=None, project=True, jit_compile=False,
                 weighted_gradients=False, adversarial_epsilon=None):
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy or tf.distribute.get_strategy()
        self.project = bool(project)
        self.adversarial_epsilon = (None if adversarial_epsilon is None
                                    else float(adversarial_epsilon))
        self._filter_positions = (decoupled_filter_positions(model, model.trainable_variables)
                                  if weighted_gradients else None)
        if not optimizer.built:  # its slots made now, not inside the first trace (one trace)
            with self.strategy.scope():
                optimizer.build(model.trainable_variables)
        # As Keras's own trainer: XLA compiles the per-replica step, run by the strategy
        # from an ordinary tf.function (one XLA program per replica, so it also works
        # under MirroredStrategy); the projection stays outside it.
        self._replica_fn = (tf.function(self._replica_step, jit_compile=True,
                                        reduce_retracing=True)
                            if jit_compile else self._replica_step)
        self._step = tf.function(self._distributed_step)

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync

    def check_batch(self, global_batch):
        """Raise a ValueError naming ``--batch_size`` unless it splits over the replicas."""
        if global_batch % self.replicas:
            raise ValueError(f"--batch_size: {global_batch} does not split over "
                             f"{self.replicas} replicas; use a multiple of the replica count")

    def _replica_step(self, images, labels):
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync
        if replicas > 1:  # every replica receives the global batch and takes its slice
            batch = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
            local = batch // replicas
            start = ctx.replica_id_in_sync_group * local
            images, labels = images[start:start + local], labels[start:start + local]
        if self.adversarial_epsilon is not None:
            images = mixed_batch(self.model, images, labels, self.adversarial_epsilon)
        terms, logits, grads = gradients(self.model, images, labels, 1.0 / replicas,
                                         self.optimizer)
        if self._filter_positions is not None:
            grads = weight_filter_gradients(self.model, self.model.trainable_variables, grads,
                                            self._filter_positions)
        self.optimizer.apply(grads, self.model.trainable_variables)
        count = tf.cast(tf.shape(logits)[0], tf.float32)
        terms["top1"] = count_in_top_k(labels, logits, 1) / count
        terms["top5"] = count_in_top_k(labels, logits, min(5, int(logits.shape[-1]))) / count
        return terms

    def _distributed_step(self, images, labels):
        per_replica = self.strategy.run(self._replica_fn, args=(images, labels))
        mean = tf.distribute.ReduceOp.MEAN
        values = {name: self.strategy.reduce(mean, per_replica[name], axis=None)
                  for name in VALUES}
        if self.project:
            self._project_when_due()
        return values

    def _project_when_due(self):
        """The projection after the update that made ``iterations`` 101, 201, ... (in the
        graph, after the update: it reads the filters the update wrote)."""
        def project():
            project_weights(self.model)
            return tf.constant(True)

        tf.cond(projection_due_tensor(self.optimizer.iterations), project,
                lambda: tf.constant(False))

    def __call__(self, images, labels):
        """One iteration; returns the values as tensors (reading them waits for the step)."""
        return self._step(images, labels)
