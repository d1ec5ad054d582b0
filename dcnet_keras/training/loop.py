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
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from dcnet_keras.accuracy import top_k_accuracies
from dcnet_keras.models.registry import build_from_spec
from dcnet_keras.train_step import VALUES, TrainStep
from dcnet_keras.training import checkpoints
from dcnet_keras.training.distribution import make_strategy
from dcnet_keras.training.run_logs import RunLogs
from dcnet_keras.training.run_record import write_run_record


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


class DivergenceError(ValueError):
    """A loss term or a weight became non-finite; nothing non-finite was saved."""


def check_finite_terms(i, values):
    """Raise :class:`DivergenceError` naming the iteration and the first non-finite term."""
    for term in ("fit", "reg", "orth"):
        value = float(values[term])
        if not math.isfinite(value):
            raise DivergenceError(
                f"iteration {i}: {term} = {value} (the run diverged; lower --base_lr); "
                "stopped: the checkpoints and exports written before are left as they were")


def check_finite_weights(model, i):
    """Raise :class:`DivergenceError` unless every weight of ``model`` is finite, and so are
    the regularisation terms they give (huge finite weights overflow ``sum(w^2)``)."""
    from dcnet_keras.regularizers import regularization_terms

    for term, value in regularization_terms(model).items():
        if not math.isfinite(float(value)):
            raise DivergenceError(
                f"iteration {i}: {term} = {float(value)} after the update (the run diverged; "
                "lower --base_lr); stopped before saving: the checkpoints and exports written "
                "before are left as they were")
    for variable in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(variable))):
            raise DivergenceError(
                f"iteration {i}: weight {variable.path} became non-finite (the run diverged; "
                "lower --base_lr); stopped before saving: the checkpoints and exports written "
                "before are left as they were")


def _export_paths(config):
    return (os.path.join(config.model_dir, f"{config.name}.keras"),
            os.path.join(config.model_dir, "saved_model"))


def export_done(config):
    """Whether both exports of a run exist (each is written atomically)."""
    keras_file, saved_model = _export_paths(config)
    return os.path.isfile(keras_file) and os.path.isfile(
        os.path.join(saved_model, "1", "saved_model.pb"))


def export_run(model, config):
    """``<model_dir>/<name>.keras`` and the SavedModel ``<model_dir>/saved_model/1``, each
    written beside its place and renamed into it."""
    from dcnet_keras.export import export_saved_model

    keras_file, saved_model = _export_paths(config)
    os.makedirs(config.model_dir, exist_ok=True)
    staging = os.path.join(config.model_dir, f".{config.name}.partial-{os.getpid()}.keras")
    try:
        model.save(staging)
        os.replace(staging, keras_file)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    export_saved_model(model, saved_model, kind=config.input_kind, overwrite=True)


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
    folder = os.path.join(model_dir, "checkpoints")

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
    start = 0
    if config.resume:
        restored, _ = checkpoints.restore_newest(checkpoint, folder)
        if restored is not None:
            start = int(next_iteration.numpy())
    if start > recipe.max_steps:
        raise ValueError(f"--max_steps: {folder} holds a run at iteration {start}, received "
                         f"{recipe.max_steps} (give at least {start}, or --no-resume)")
    last = recipe.max_steps - 1
    if is_chief:  # leftovers of writes a kill interrupted (after the restore, before writes)
        checkpoints.remove_stale_temporaries(model_dir)
    if is_chief and not config.resume and checkpoints.complete_checkpoints(folder):
        # a fresh start must not leave the earlier run's later checkpoints for a resume to
        # pick up, nor destroy them: they move aside
        aside = f"{folder}.before-{time.strftime('%Y%m%d-%H%M%S')}"
        os.replace(folder, aside)
        print(f"==== --no-resume: the earlier checkpoints were moved to {aside}", flush=True)
    manager = checkpoints.make_manager(checkpoint, folder, config.keep_checkpoints)
    if iterator is None:
        iterator = iter(train_stream(start))
    if is_chief and start == 0:  # what the checkpoints hold, for resumes, export and evaluate
        write_run_record(model_dir, config)
    logs = RunLogs(config.log_dir, recipe.log_format,
                   resume_after=start - 1 if start else None) if is_chief else None
    writers = []

    def writer():  # made on first use: a finished run's rerun writes no event file
        if not writers:
            writers.append(tf.summary.create_file_writer(
                os.path.join(config.log_dir, "tensorboard")) if is_chief
                else tf.summary.create_noop_writer())
        return writers[0]

    def say(line):
        if is_chief:
            print(line, flush=True)

    say(f"==== {config.name}: {strategy.num_replicas_in_sync} replica(s), global batch "
        f"{recipe.batch_size}; logs in {config.log_dir}; checkpoints in {model_dir}"
        + (f"; resuming at iteration {start}" if 0 < start < recipe.max_steps else ""))

    def predict(images):
        return model(images, training=False)

    predict = tf.function(predict)

    def test(i):
        accuracy = top_k_accuracies(predict, tests)[0]
        if is_chief:
            say(logs.test(i, accuracy))
            with writer().as_default():
                for k, value in accuracy.items():
                    tf.summary.scalar(f"test/top{k}", value, step=i)
        return accuracy

    def save(i):
        check_finite_weights(model, i)
        next_iteration.assign(i + 1)
        manager.save(checkpoint_number=i)

    progress = (keras.utils.Progbar(recipe.max_steps, stateful_metrics=VALUES)
                if config.progress and is_chief else None)
    accuracy = None
    for i in range(start, recipe.max_steps):
        images, labels = next(iterator)
        values = {k: float(v) for k, v in step(images, labels).items()}
        check_finite_terms(i, values)
        if progress is not None:
            progress.update(i + 1, values=list(values.items()))
        if i % recipe.log_every == 0 and i != 0 and is_chief:
            line = logs.train(i, values)
            if progress is None:
                say(line)
            with writer().as_default():
                for k, value in values.items():
                    tf.summary.scalar(f"train/{k}", value, step=i)
                tf.summary.scalar("train/learning_rate", float(optimizer.learning_rate), step=i)
        if i % recipe.eval_every == 0 and i != 0:
            accuracy = test(i)
        if i % recipe.checkpoint_every == 0 and i != 0:
            save(i)
    # The end, as the originals: CIFAR saves and tests its last iteration (42499) after the
    # loop; ImageNet's last (700000) was saved and tested in the loop, and is not again.
    finished_before = start == recipe.max_steps
    if finished_before:
        say(f"==== {config.name}: already finished ({recipe.max_steps} iterations in {folder}); "
            "nothing to train")
    elif last == 0 or last % recipe.checkpoint_every:
        save(last)
    if logs is None or logs.last_test_iteration() != last:
        accuracy = test(last)
    elif accuracy is None:
        accuracy = logs.last_test_accuracy()
    if is_chief and config.export and not (finished_before and export_done(config)):
        check_finite_weights(model, last)
        export_run(model, config)
    if not finished_before:
        say(f"==== final test accuracy after {recipe.max_steps} iterations: "
            + ", ".join(f"top{k}={v:.4f}" for k, v in accuracy.items()))
    return RunResult(model, strategy, accuracy[1], accuracy)
