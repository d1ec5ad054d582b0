"""``python -m dcnet_keras.evaluate``: top-1 / top-5 accuracy of a trained model on a test set.

    python -m dcnet_keras.evaluate model/tanh_cos/tanh_cos.keras
    python -m dcnet_keras.evaluate model/tanh_cos/saved_model/1
    python -m dcnet_keras.evaluate model/tanh_cos --variant tanh_cos        # training checkpoints
    python -m dcnet_keras.evaluate model/tanh_cos/42499 --tf1 --variant tanh_cos  # original TF1
    python -m dcnet_keras.evaluate model/cnn9_tanh_cos --preset cnn9_tanh_cos --data_dir DIR
    python -m dcnet_keras.evaluate m.keras --dataset cifar10 --source synthetic

MODEL is loaded as :mod:`dcnet_keras.export` loads models (a checkpoint's
model named by the shared model flags, ``--variant`` alone as before, or by
the run's ``model_spec.json``).  The data: ``--dataset`` (default: the run's
``model_spec.json``'s, the preset's dataset, for a ``--network`` its default
dataset, for an ImageNet-sized ``.keras``/SavedModel ``imagenet``, else
``cifar100``), opened from ``--source`` (default ``auto`` for CIFAR: the format
found in ``--data_dir``, else tfds; ``tfrecord`` for ImageNet) through
:mod:`dcnet_keras.data.registry`.  A checkpoint's model gets the dataset's
number of classes unless ``--num_classes`` says otherwise.

Every test image is counted once, in inference mode (moving averages):
``top-k = #{images whose label is among the k largest logits} / #images``
(:func:`dcnet_keras.accuracy.top_k_accuracies`).  The last line printed is
``top1=<a>, top5=<b> over <n> test images (<source>)``.  Bad input ends the
process with one line ``error: ...`` and exit code 1: a model whose number of
classes or input kind differs from the dataset's is such an error, naming both.
"""

import argparse
import os
import sys

from dcnet_keras.export.cli import CHECKPOINT_MODEL_HELP
from dcnet_keras.model_flags import add_model_flags

#: the pre-registry ``--dataset`` values, which named the CIFAR-100 source.
LEGACY_SOURCES = ("auto", "binary", "pickle", "tfds", "synthetic")
DEFAULT_DATASET = "cifar100"


def build_parser():
    from dcnet_keras.data.registry import DATASETS

    parser = argparse.ArgumentParser(
        prog="python -m dcnet_keras.evaluate",
        description="Top-1 / top-5 accuracy of a trained model on a test set.",
        epilog=CHECKPOINT_MODEL_HELP, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", help=".keras file, SavedModel folder, a model_dir or "
                                      "checkpoint prefix of our runs, or (--tf1) of the original")
    parser.add_argument("--tf1", action="store_true", help="MODEL is an original TF1 checkpoint")
    add_model_flags(parser)
    parser.add_argument("--dataset", default=None,
                        choices=DATASETS.names() + LEGACY_SOURCES, metavar="DATASET",
                        help=f"one of {', '.join(DATASETS.names())} (default: the run's "
                             f"model_spec.json's, the preset's, imagenet for an ImageNet-sized "
                             f"model, else {DEFAULT_DATASET}); the old source names "
                             f"({', '.join(LEGACY_SOURCES)}) mean --source with CIFAR-100")
    parser.add_argument("--source", default=None,
                        help="the dataset's format: auto, binary, pickle, tfds, synthetic "
                             "(CIFAR; default auto) or tfrecord, tfds (ImageNet; default "
                             "tfrecord)")
    parser.add_argument("--data_dir", default=None, help="the dataset's folder")
    parser.add_argument("--batch_size", type=int, default=100)
    return parser


def _legacy(args):
    """``--dataset binary`` (and the other old source names) as ``--source binary``."""
    if args.dataset in LEGACY_SOURCES:
        if args.source is not None and args.source != args.dataset:
            raise ValueError(f"--dataset: {args.dataset!r} is a source name (the old "
                             f"--dataset); it conflicts with --source {args.source!r}")
        args.source, args.dataset = args.dataset, None
    return args


def model_spec_for(args, num_classes):
    """The checkpoint's :class:`ModelSpec` from the flags (``num_classes``: when
    ``--num_classes`` is absent), or ``None``: a ``.keras`` file, a SavedModel, or a run whose
    ``model_spec.json`` names the model (no model flags given)."""
    from dcnet_keras.export.loaders import is_saved_model
    from dcnet_keras.model_flags import model_spec

    path = args.model
    if path.endswith(".keras") or is_saved_model(path) or _uses_stored_spec(args):
        return None
    return model_spec(args, default="tanh_cos", num_classes=num_classes)


def load_predict(path, spec=None, tf1=False):
    """``(predict, kind)``: ``predict(float32 network input) -> logits`` of the model at
    ``path`` (a SavedModel, a ``.keras`` file, or a checkpoint of ``spec``)."""
    from dcnet_keras.export.loaders import is_saved_model, load_model, load_saved_model

    if is_saved_model(path):
        return load_saved_model(path)
    model, kind = load_model(path, spec, tf1=tf1)
    return (lambda images: model(images, training=False)), kind


def _uses_stored_spec(args):
    """Whether the checkpoint's model comes from its run's ``model_spec.json`` (no flags)."""
    from dcnet_keras.export.spec_file import find_spec_file
    from dcnet_keras.model_flags import names_a_model

    return not (args.tf1 or names_a_model(args)) and find_spec_file(args.model) is not None


def dataset_name(args, model_kind=None, checkpoint=False):
    from dcnet_keras.export.spec_file import read_model_spec
    from dcnet_keras.model_flags import model_dataset
    from dcnet_keras.models.registry import get_network

    if args.dataset:
        return args.dataset
    if checkpoint and _uses_stored_spec(args):
        spec, stored = read_model_spec(args.model)
        return stored or get_network(spec.network).default_dataset
    named = model_dataset(args)
    if named:
        return named
    return "imagenet" if model_kind == "imagenet" else DEFAULT_DATASET


def check_fit(predict, kind, dataset):
    """Raise a one-line ValueError unless the model takes ``dataset``'s images and has
    its number of classes."""
    import tensorflow as tf

    from dcnet_keras.models.registry import INPUT_KINDS

    if kind is not None and kind != dataset.input_kind:
        raise ValueError(f"--dataset: the model takes {kind} images {list(INPUT_KINDS[kind])} "
                         f"but dataset {dataset.name!r} has {dataset.input_kind} images "
                         f"{list(INPUT_KINDS[dataset.input_kind])}")
    try:
        logits = predict(tf.zeros((1,) + INPUT_KINDS[dataset.input_kind], tf.float32))
    except (ValueError, tf.errors.OpError) as error:
        from dcnet_keras.export.errors import one_line

        raise ValueError(f"--dataset: the model does not take dataset {dataset.name!r}'s "
                         f"images {list(INPUT_KINDS[dataset.input_kind])}: "
                         f"{one_line(error)}") from None
    classes = int(logits.shape[-1])
    if classes != dataset.num_classes:
        raise ValueError(f"--dataset: the model has {classes} classes but dataset "
                         f"{dataset.name!r} has {dataset.num_classes} (check --dataset, "
                         "--num_classes)")


def open_data(dataset, args):
    source = args.source or ("auto" if "auto" in dataset.sources else dataset.sources[0])
    return dataset.open(source, args.data_dir, repo_root=os.getcwd())


def evaluate(predict, data, batch_size=100):
    """``({1: top-1, 5: top-5}, images seen)`` of ``predict`` over ``data.test_dataset``."""
    from dcnet_keras.accuracy import top_k_accuracies

    return top_k_accuracies(predict, data.test_dataset(batch_size))


def main(argv=None):
    """Run the CLI on ``argv``; return ``{1: top-1, 5: top-5}``."""
    args = build_parser().parse_args(argv)
    import tensorflow as tf

    from dcnet_keras.data.registry import get_dataset
    from dcnet_keras.export.errors import one_line
    from dcnet_keras.export.loaders import is_saved_model

    data = None
    try:
        args = _legacy(args)
        if args.batch_size < 1:
            raise ValueError(f"--batch_size: expected a positive integer, received "
                             f"{args.batch_size}")
        path = args.model
        if not (os.path.exists(path) or os.path.exists(path + ".index")):
            raise FileNotFoundError(f"model: nothing at {path!r} (expected a .keras file, a "
                                    "SavedModel folder, a model_dir or a checkpoint prefix)")
        checkpoint = not (path.endswith(".keras") or is_saved_model(path))
        if checkpoint:  # the flags and the data files are checked before the model is built;
            # the dataset's classes are the model's (unless --num_classes or model_spec.json say)
            dataset = get_dataset(dataset_name(args, checkpoint=True))
            spec = model_spec_for(args, dataset.num_classes)
            data = open_data(dataset, args)
            predict, kind = load_predict(path, spec, args.tf1)
        else:  # the model first: an ImageNet-sized one defaults to ImageNet
            predict, kind = load_predict(path)
            dataset = get_dataset(dataset_name(args, kind))
            data = open_data(dataset, args)
        check_fit(predict, kind, dataset)
        accuracy, seen = evaluate(predict, data, args.batch_size)
    except tf.errors.OpError as error:  # from the input pipeline: the file and record
        explain = getattr(data, "explain", None)
        sys.exit(f"error: {explain(error) if explain else one_line(error)}")
    except (ValueError, OSError) as error:  # DataError, ExportError, CheckpointMismatchError
        sys.exit(f"error: {one_line(error)}")
    print(f"top1={accuracy[1]:.4f}, top5={accuracy[5]:.4f} over {seen} test images "
          f"({data.description})")
    return accuracy


if __name__ == "__main__":
    main()
