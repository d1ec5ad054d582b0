"""One CIFAR-100 training run: data, model, checkpoints, logs and the loop."""

import os
from dataclasses import dataclass

import keras
import tensorflow as tf

from dcnet_keras.callbacks import project_weights, projection_due
from dcnet_keras.data.cifar100 import load_cifar100, test_dataset, train_dataset
from dcnet_keras.models import build_cifar_resnet
from dcnet_keras.optimizers import cifar_optimizer
from dcnet_keras.schedules import cifar_schedule
from dcnet_keras.training.distribution import make_strategy
from dcnet_keras.training.run_logs import RunLogs
from dcnet_keras.training.trainer import METRICS, Trainer

NUM_CLASSES = 100
TEST_BATCH = 100
SHUFFLE_BUFFER = 20000


@dataclass
class RunResult:
    """What :func:`run` leaves: the trained model, its strategy and the final test accuracy."""

    model: object
    strategy: object
    test_accuracy: float


def _worker_role(strategy):
    """``(is_chief, task id)``; one process is the chief outside multi-worker runs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, 0
    chief = resolver.task_type == "chief" or (resolver.task_type == "worker"
                                               and resolver.task_id == 0)
    return chief, resolver.task_id


def run(variant, repo_root, args):
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(args.seed)
    strategy = make_strategy(args.strategy)
    is_chief, task_id = _worker_role(strategy)
    model_dir = os.path.abspath(args.model_dir or os.path.join(repo_root, "model", variant))
    log_dir = os.path.abspath(args.log_dir or os.path.join(repo_root, "log", variant))
    if not is_chief:  # other workers save to a scratch folder, as tf.distribute requires
        model_dir = os.path.join(model_dir, f"worker_{task_id}")

    data = load_cifar100(args.dataset, args.data_dir,
                         default_binary_dir=os.path.join(repo_root, "cifar-100-binary"))
    with strategy.scope():
        model = build_cifar_resnet(variant, NUM_CLASSES, tuple(args.widths),
                                   args.units_per_stage,
                                   zero_debias=args.debias_moving_averages)
        optimizer = cifar_optimizer(cifar_schedule(args.base_lr))
        optimizer.build(model.trainable_variables)
        next_iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="next_iteration")
    trainer = Trainer(model, optimizer, strategy, args.batch_size)
    iterator = iter(train_dataset(data.train_images, data.train_labels, args.batch_size,
                                  seed=args.seed, shuffle_buffer=SHUFFLE_BUFFER))
    tests = test_dataset(data.test_images, data.test_labels, TEST_BATCH)

    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, iterator=iterator,
                                     next_iteration=next_iteration)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, "checkpoints"),
                                         max_to_keep=3)
    start = 0
    if args.resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        start = int(next_iteration.numpy())
    logs = RunLogs(log_dir, resume_after=start - 1 if start else None) if is_chief else None
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "tensorboard")) \
        if is_chief else tf.summary.create_noop_writer()

    def say(line):
        if is_chief:
            print(line, flush=True)

    say(f"==== {variant}: {data.source}; {strategy.num_replicas_in_sync} replica(s), "
        f"global batch {args.batch_size}; logs in {log_dir}; checkpoints in {model_dir}"
        + (f"; resuming at iteration {start}" if start else ""))

    def test(i):
        accuracy = trainer.evaluate(tests)[1]
        if is_chief:
            say(logs.test(i, accuracy))
            with writer.as_default():
                tf.summary.scalar("test/accuracy", accuracy, step=i)
        return accuracy

    def save(i):
        next_iteration.assign(i + 1)
        manager.save(checkpoint_number=i)

    progress = keras.utils.Progbar(args.max_steps, stateful_metrics=METRICS) \
        if args.progress and is_chief else None
    i = start - 1
    for i in range(start, args.max_steps):
        images, labels = next(iterator)
        values = trainer.train_step(images, labels)
        if progress is not None or (i % args.log_every == 0 and i != 0):
            values = {k: float(v) for k, v in values.items()}
        if progress is not None:
            progress.update(i + 1, values=list(values.items()))
        if i % args.log_every == 0 and i != 0 and is_chief:
            line = logs.train(i, *(values[k] for k in METRICS))
            if progress is None:
                say(line)
            with writer.as_default():
                for k in METRICS:
                    tf.summary.scalar(f"train/{k}", values[k], step=i)
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
    if is_chief and not args.no_export:
        os.makedirs(model_dir, exist_ok=True)
        model.save(os.path.join(model_dir, f"{variant}.keras"))
        from dcnet_keras.export import export_saved_model  # serving signatures, see README
        export_saved_model(model, os.path.join(model_dir, "saved_model"), overwrite=True)
    say(f"==== final test accuracy after {args.max_steps} iterations: {accuracy:.4f}")
    return RunResult(model, strategy, accuracy)
