"""Training checkpoints written as a training run writes them, for the export and evaluate
tests."""

import tensorflow as tf

from dcnet_keras.models import get_network
from dcnet_keras.recipes import get_recipe


def save_training_checkpoint(model, network, model_dir, iteration=6, iterator=True):
    """``model`` saved as a training run saves it: ``tf.train.Checkpoint(model, optimizer,
    [iterator], next_iteration)`` through a ``CheckpointManager`` in
    ``<model_dir>/checkpoints/`` (numbered ``iteration``)."""
    optimizer = get_recipe(get_network(network).default_recipe).make_optimizer()
    optimizer.build(model.trainable_variables)
    state = dict(model=model, optimizer=optimizer,
                 next_iteration=tf.Variable(iteration + 1, dtype=tf.int64))
    if iterator:
        state["iterator"] = iter(tf.data.Dataset.range(10).repeat())
        next(state["iterator"])
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(**state),
                                         str(model_dir / "checkpoints"), 3)
    return manager.save(checkpoint_number=iteration)
