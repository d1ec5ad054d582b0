"""The training loop of every run (CIFAR ResNet, ImageNet ResNet, CNN-9), driven by a
:class:`~dcnet_keras.training.config.RunConfig`.

Per iteration ``i`` (0-based), in the original's order: the update (its fit /
reg / orth / accuracies computed before it) and the weight projection after
updates 101, 201, ... (both in :class:`~dcnet_keras.train_step.TrainStep`), the
log line when ``i`` is a multiple of ``log_every`` (``i > 0``), a pass over the
test set every ``eval_every``, a checkpoint every ``checkpoint_every``; after
the loop a final checkpoint and test labelled with the last ``i``.
Checkpoints hold the model, the optimiser, the next iteration and (where the
data source allows it) the input pipeline's position; the newest one is
resumed from.
"""

import dataclasses
import os

import keras
import tensorflow as tf

from dcnet_keras.accuracy import top_k_accuracies
from dcnet_keras.models.registry import build_from_spec
from dcnet_keras.train_step import VALUES, TrainStep
from dcnet_keras.training.distribution import make_strategy
from dcnet_keras.training.run_logs import RunLogs


@dataclasses.dataclass
class RunResult:
    """What a run leaves: the trained model, its strategy and the final test accuracy
    (top-1), with every top-k accuracy in ``test_top_k``."""

    model: object
    strategy: object
    test_accuracy: float
    test_top_k: dict


def _worker_role(strategy):
    """``(is_chief, task id)``; one process is the chief outside multi-worker runs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, 0
    chief = resolver.task_type == "chief" or (resolver.task_type == "worker"
                                               and resolver.task_id == 0)
    return chief, resolver.task_id


def export_run(model, config):
    """``<model_dir>/<name>.keras`` and the SavedModel ``<model_dir>/saved_model/1``."""
    from dcnet_keras.export import export_saved_model

    os.makedirs(config.model_dir, exist_ok=True)
    model.save(os.path.join(config.model_dir, f"{config.name}.keras"))
    export_saved_model(model, os.path.join(config.model_dir, "saved_model"),
                       kind=config.input_kind, overwrite=True)


def run(config):
    """Train as ``config`` says; returns a :class:`RunResult`."""
    strategy = make_strategy(config.strategy)  # first: collectives must be set up at start-up
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    recipe, data = config.recipe, config.data
    is_chief, task_id = _worker_role(strategy)
    model_dir = config.model_dir
    if not is_chief:  # other workers save to a scratch folder, as tf.distribute requires
        model_dir = os.path.join(model_dir, f"worker_{task_id}")

    with strategy.scope():
        model = build_from_spec(config.model)
        optimizer = recipe.make_optimizer()
        optimizer.build(model.trainable_variables)
        next_iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="next_iteration")
    step = TrainStep(model, optimizer, strategy)
    step.check_batch(recipe.batch_size)
    tests = data.test_dataset(recipe.test_batch or recipe.batch_size)

    def train_stream(start):
        return data.train_dataset(recipe.batch_size, config.seed, start, config.augmentation,
                                  recipe.shuffle_buffer)

    state = dict(model=model, optimizer=optimizer, next_iteration=next_iteration)
    iterator = None
    if data.checkpoint_input:
        iterator = state["iterator"] = iter(train_stream(0))
    checkpoint = tf.train.Checkpoint(**state)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, "checkpoints"),
                                         max_to_keep=3)
    start = 0
    if config.resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        start = int(next_iteration.numpy())
    if iterator is None:
        iterator = iter(train_stream(start))
    if is_chief and start == 0:  # which model the checkpoints hold, for export and evaluate
        from dcnet_keras.export import write_model_spec

        write_model_spec(model_dir, config.model, config.dataset)
    logs = RunLogs(config.log_dir, recipe.log_format,
                   resume_after=start - 1 if start else None) if is_chief else None
    writer = (tf.summary.create_file_writer(os.path.join(config.log_dir, "tensorboard"))
              if is_chief else tf.summary.create_noop_writer())

    def say(line):
        if is_chief:
            print(line, flush=True)

    say(f"==== {config.name}: {strategy.num_replicas_in_sync} replica(s), global batch "
        f"{recipe.batch_size}; logs in {config.log_dir}; checkpoints in {model_dir}"
        + (f"; resuming at iteration {start}" if start else ""))

    def predict(images):
        return model(images, training=False)

    predict = tf.function(predict)

    def test(i):
        accuracy = top_k_accuracies(predict, tests)[0]
        if is_chief:
            say(logs.test(i, accuracy))
            with writer.as_default():
                for k, value in accuracy.items():
                    tf.summary.scalar(f"test/top{k}", value, step=i)
        return accuracy

    def save(i):
        next_iteration.assign(i + 1)
        manager.save(checkpoint_number=i)

    progress = (keras.utils.Progbar(recipe.max_steps, stateful_metrics=VALUES)
                if config.progress and is_chief else None)
    for i in range(start, recipe.max_steps):
        images, labels = next(iterator)
        values = step(images, labels)
        log_due = i % recipe.log_every == 0 and i != 0
        if progress is not None or log_due:
            values = {k: float(v) for k, v in values.items()}
        if progress is not None:
            progress.update(i + 1, values=list(values.items()))
        if log_due and is_chief:
            line = logs.train(i, values)
            if progress is None:
                say(line)
            with writer.as_default():
                for k, value in values.items():
                    tf.summary.scalar(f"train/{k}", value, step=i)
                tf.summary.scalar("train/learning_rate", float(optimizer.learning_rate), step=i)
        if i % recipe.eval_every == 0 and i != 0:
            test(i)
        if i % recipe.checkpoint_every == 0 and i != 0:
            save(i)
    last = recipe.max_steps - 1
    if start < recipe.max_steps:
        save(last)
    accuracy = test(last)
    if is_chief and config.export:
        export_run(model, config)
    say(f"==== final test accuracy after {recipe.max_steps} iterations: "
        + ", ".join(f"top{k}={v:.4f}" for k, v in accuracy.items()))
    return RunResult(model, strategy, accuracy[1], accuracy)
