"""The training loop both original scripts share, driven by a :class:`Recipe`.

Per iteration ``i`` (0-based), in the original's order: the update (its fit /
reg / orth / accuracies computed before it), the log line when ``i`` is a
multiple of ``log_every`` (``i > 0``), the weight projection after updates
101, 201, ..., a pass over the test set every ``eval_every``, a checkpoint every
``checkpoint_every``; after the loop a final checkpoint and test labelled with
the last ``i``.  Checkpoints hold the model, the optimiser, the next iteration
and the input pipeline's position; the newest one is resumed from.
"""

import os
from dataclasses import dataclass
from typing import Callable

import keras
import tensorflow as tf

from dcnet_keras.callbacks import project_weights, projection_due
from dcnet_keras.training.distribution import make_strategy
from dcnet_keras.training.run_logs import RunLogs
from dcnet_keras.training.trainer import METRICS, Trainer


@dataclass
class Recipe:
    """What differs between the CIFAR-100 and the ImageNet scripts."""

    name: str                      # log/<name>, model/<name>
    build_model: Callable          # () -> keras.Model (called under the strategy's scope)
    make_optimizer: Callable       # () -> optimizer
    train_dataset: Callable        # (start iteration) -> infinite tf.data.Dataset of global batches
    eval_dataset: Callable         # () -> one ordered pass over the test/validation set
    train_line: Callable           # (i, metrics dict) -> original log line
    test_line: Callable            # (i, {k: top-k accuracy}) -> original log line
    export: Callable = None        # (model, model_dir) -> None, at the end (chief only)
    # Save the input pipeline's position (with its shuffle buffer) in checkpoints, so a
    # resumed run replays the same batches.  ImageNet's buffer of JPEGs is ~1 GB: off
    # there, and a resumed run's stream restarts, reseeded by the iteration.
    checkpoint_input: bool = True


@dataclass
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


def run(recipe, args, repo_root):
    """Train ``recipe`` with the common flags in ``args`` (see the scripts' ``--help``)."""
    strategy = make_strategy(args.strategy)  # first: collectives must be set up at start-up
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(args.seed)
    is_chief, task_id = _worker_role(strategy)
    model_dir = os.path.abspath(args.model_dir or os.path.join(repo_root, "model", recipe.name))
    log_dir = os.path.abspath(args.log_dir or os.path.join(repo_root, "log", recipe.name))
    if not is_chief:  # other workers save to a scratch folder, as tf.distribute requires
        model_dir = os.path.join(model_dir, f"worker_{task_id}")

    with strategy.scope():
        model = recipe.build_model()
        optimizer = recipe.make_optimizer()
        optimizer.build(model.trainable_variables)
        next_iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="next_iteration")
    trainer = Trainer(model, optimizer, strategy, args.batch_size)
    tests = recipe.eval_dataset()

    state = dict(model=model, optimizer=optimizer, next_iteration=next_iteration)
    iterator = None
    if recipe.checkpoint_input:
        iterator = state["iterator"] = iter(recipe.train_dataset(0))
    checkpoint = tf.train.Checkpoint(**state)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, "checkpoints"),
                                         max_to_keep=3)
    start = 0
    if args.resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        start = int(next_iteration.numpy())
    if iterator is None:
        iterator = iter(recipe.train_dataset(start))
    logs = RunLogs(log_dir, recipe.train_line, recipe.test_line,
                   resume_after=start - 1 if start else None) if is_chief else None
    writer = (tf.summary.create_file_writer(os.path.join(log_dir, "tensorboard"))
              if is_chief else tf.summary.create_noop_writer())

    def say(line):
        if is_chief:
            print(line, flush=True)

    say(f"==== {recipe.name}: {strategy.num_replicas_in_sync} replica(s), global batch "
        f"{args.batch_size}; logs in {log_dir}; checkpoints in {model_dir}"
        + (f"; resuming at iteration {start}" if start else ""))

    def test(i):
        accuracy = trainer.evaluate(tests)
        if is_chief:
            say(logs.test(i, accuracy))
            with writer.as_default():
                for k, value in accuracy.items():
                    tf.summary.scalar(f"test/top{k}", value, step=i)
        return accuracy

    def save(i):
        next_iteration.assign(i + 1)
        manager.save(checkpoint_number=i)

    progress = (keras.utils.Progbar(args.max_steps, stateful_metrics=METRICS)
                if args.progress and is_chief else None)
    for i in range(start, args.max_steps):
        images, labels = next(iterator)
        values = trainer.train_step(images, labels)
        log_due = i % args.log_every == 0 and i != 0
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
        if projection_due(optimizer.iterations):
            project_weights(model)
        if i % args.eval_every == 0 and i != 0:
            test(i)
        if i % args.checkpoint_every == 0 and i != 0:
            save(i)
    last = args.max_steps - 1
    if start < args.max_steps:
        save(last)
    accuracy = test(last)
    if is_chief and recipe.export is not None and not args.no_export:
        os.makedirs(model_dir, exist_ok=True)
        recipe.export(model, model_dir)
    say(f"==== final test accuracy after {args.max_steps} iterations: "
        + ", ".join(f"top{k}={v:.4f}" for k, v in accuracy.items()))
    return RunResult(model, strategy, accuracy[1], accuracy)
