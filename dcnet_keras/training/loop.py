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

No host sync per iteration: the step's values stay tensors on the device, kept
in a small buffer, and are read back (one transfer for the whole buffer,
:func:`read_values`) only at a *sync point*: a log line, a TensorBoard summary
(``i % summary_every == 0``), a test, a checkpoint, every ``check_every``
iterations, and after the loop (before the final checkpoint, test and export).
Every read checks the buffered iterations in order, so a divergence is reported
at the first iteration whose fit / reg / orth is non-finite, and nothing is saved
after it.  The original's lines always go to stdout; the progress bar only to a
terminal (:mod:`dcnet_keras.training.progress`), redrawn at sync points.

``mixed_precision`` builds the model (and its optimiser) under the Keras policy
``mixed_float16`` (the optimiser wrapped in ``keras.optimizers.LossScaleOptimizer``)
or ``mixed_bfloat16``; ``jit_compile`` compiles the step and the test forward with XLA.
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
from dcnet_keras.precision import global_dtype_policy
from dcnet_keras.train_step import VALUES, TrainStep
from dcnet_keras.training import checkpoints
from dcnet_keras.training.config import MIXED_PRECISION_POLICIES
from dcnet_keras.training.distribution import make_strategy
from dcnet_keras.training.progress import RunOutput
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


def read_values(pending):
    """``[(i, {name: float})]`` of the buffered steps ``pending`` (``[(i, {name: tensor})]``),
    in order: every value cast to float32 and stacked on the device, then ONE transfer to the
    host (the only place the loop reads step values back)."""
    if not pending:
        return []
    stacked = tf.stack([tf.cast(values[name], tf.float32)
                        for _, values in pending for name in VALUES])
    rows = np.reshape(stacked.numpy(), (len(pending), len(VALUES)))
    return [(i, dict(zip(VALUES, (float(v) for v in row))))
            for (i, _), row in zip(pending, rows)]


class StepValues:
    """The step values of the iterations since the last read (tensors, not read yet) and
    the newest values read."""

    def __init__(self):
        self.pending = []
        self.latest = None  # (i, {name: float}) of the newest iteration read

    def add(self, i, values):
        self.pending.append((i, values))

    def read(self):
        """Read the buffer back, check every iteration in order (:func:`check_finite_terms`),
        empty it; returns the newest ``{name: float}`` (``None`` if nothing was ever read)."""
        pending, self.pending = self.pending, []
        for i, values in read_values(pending):
            check_finite_terms(i, values)
            self.latest = (i, values)
        return None if self.latest is None else self.latest[1]


def jit_enabled(setting, replicas=1):
    """``--jit_compile``: ``on`` -> True, ``off`` -> False, ``auto`` -> whether TensorFlow
    sees a GPU and the run has one replica (XLA under ``MirroredStrategy`` compiles each
    replica's step and is not available everywhere: with several replicas ask for it
    with ``on``)."""
    if setting == "auto":
        return replicas == 1 and bool(tf.config.list_physical_devices("GPU"))
    return setting == "on"


def build_model_and_optimizer(config):
    """The model of ``config.model`` and the recipe's optimiser (built), both made under the
    ``config.mixed_precision`` policy; for float16 the optimiser is wrapped in
    ``keras.optimizers.LossScaleOptimizer`` (dynamic loss scaling).  Call under the
    strategy's scope."""
    with global_dtype_policy(MIXED_PRECISION_POLICIES[config.mixed_precision]):
        model = build_from_spec(config.model)
        optimizer = config.recipe.make_optimizer()
        if config.mixed_precision == "float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    return model, optimizer


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
        model, optimizer = build_model_and_optimizer(config)
        next_iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="next_iteration")
    jit_compile = jit_enabled(config.jit_compile, strategy.num_replicas_in_sync)
    step = TrainStep(model, optimizer, strategy, jit_compile=jit_compile,
                     project=config.projection, weighted_gradients=config.weighted_gradients,
                     adversarial_epsilon=(config.adversarial_epsilon
                                          if config.adversarial == "fgsm" else None))
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

    output = RunOutput(recipe.max_steps, start, bar=config.progress) if is_chief else None

    def say(line):
        if is_chief:
            output.line(line)

    say(f"==== {config.name}: {strategy.num_replicas_in_sync} replica(s), global batch "
        f"{recipe.batch_size}; logs in {config.log_dir}; checkpoints in {model_dir}"
        + (f"; resuming at iteration {start}" if 0 < start < recipe.max_steps else ""))

    def predict(images):
        return model(images, training=False)

    predict = tf.function(predict, jit_compile=jit_compile)

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

    schedule = recipe.schedule()  # the rate of update i is schedule(i)

    def summarise(i, values):
        with writer().as_default():
            for k, value in values.items():
                tf.summary.scalar(f"train/{k}", value, step=i)
            tf.summary.scalar("train/learning_rate", float(schedule(i)), step=i)

    buffer = StepValues()
    accuracy = None
    try:
        for i in range(start, recipe.max_steps):
            images, labels = next(iterator)
            buffer.add(i, step(images, labels))
            log_due = i % recipe.log_every == 0 and i != 0
            summary_due = i % config.summary_every == 0
            test_due = i % recipe.eval_every == 0 and i != 0
            save_due = i % recipe.checkpoint_every == 0 and i != 0
            if log_due or summary_due or test_due or save_due or i % config.check_every == 0:
                values = buffer.read()  # the sync point: checked before anything is written
                if is_chief:
                    output.progress(i + 1, values)
                    if log_due:
                        say(logs.train(i, values))
                    if summary_due:
                        summarise(i, values)
            if test_due:
                accuracy = test(i)
            if save_due:
                save(i)
        if start < recipe.max_steps:
            values = buffer.read()  # the last iterations, checked before the final save
            if is_chief:
                output.progress(recipe.max_steps, values)
                output.close()
        # The end, as the originals: CIFAR saves and tests its last iteration (42499) after
        # the loop; ImageNet's last (700000) was saved and tested in the loop, and is not again.
        finished_before = start == recipe.max_steps
        if finished_before:
            say(f"==== {config.name}: already finished ({recipe.max_steps} iterations in "
                f"{folder}); nothing to train")
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
    finally:
        if output is not None:
            output.close(keep=False)  # an error's message starts at column 0
        for summary_writer in writers:
            summary_writer.flush()
    return RunResult(model, strategy, accuracy[1], accuracy)
