"""``python -m dcnet_keras.attack``: top-1 accuracy under an FGSM or BIM attack.

    python -m dcnet_keras.attack model/cnn9/cnn9.keras --attack fgsm --epsilon 8 --dataset cifar10
    python -m dcnet_keras.attack model/tanh_cos --attack bim --epsilon 8 --step 1 --iterations 10
    python -m dcnet_keras.attack m.keras --source_model other.keras --dataset cifar10   # black-box
    python -m dcnet_keras.attack m.keras --dataset cifar10 --source synthetic --max_images 64

MODEL (and ``--source_model``) are loaded as ``python -m dcnet_keras.evaluate`` loads them
(:func:`dcnet_keras.evaluate.load_predict`): a ``.keras`` file, a SavedModel folder, a run's
model_dir or checkpoint (its ``model_spec.json``, or the model flags, which describe MODEL
only: a checkpoint given as ``--source_model`` needs its ``model_spec.json``).  The test
images of a CIFAR dataset (RGB in 0..255) come from ``--source`` as evaluate opens them;
``--max_images`` keeps the first N.

White-box (no ``--source_model``): each batch is attacked with the gradient of MODEL's
loss (``--loss``: ``softmax``, the plain softmax cross entropy, by default; ``training``,
the model's own label-smoothed training loss, which barely moves a confident model: see
:mod:`dcnet_keras.attacks`) in inference mode (moving
averages, ``training=False``) with respect to the 0..255 input; black-box: the images are
crafted on ``--source_model`` and MODEL classifies them.  FGSM:
``clip(x + eps * sign(grad), 0, 255)``; BIM: ``--iterations`` steps of ``--step`` grey
levels, each projected back into ``[x - eps, x + eps]`` and ``[0, 255]``
(:mod:`dcnet_keras.attacks`).  Printed: ``clean: accuracy=<a> over <n> images``, then
``<attack> eps=<E>: accuracy=<b> over <n> images`` (top-1, every image counted once).  A
SavedModel is a TensorFlow graph: attacking one white-box (or using it as
``--source_model``) needs the TensorFlow backend.  Bad input ends the process with one line
``error: ...`` and exit code 1, the flags checked before any model is loaded.
"""

import argparse
import os
import sys

from dcnet_keras.attacks import (ATTACK_LOSSES, ATTACKS, DEFAULT_BIM_ITERATIONS, DEFAULT_BIM_STEP,
                                 DEFAULT_EPSILON)
from dcnet_keras.export.cli import CHECKPOINT_MODEL_HELP
from dcnet_keras.model_flags import add_model_flags

#: the datasets whose images are the networks' 0..255 RGB input (ImageNet's are
#: mean-subtracted, so a [0, 255] box means nothing there).
INPUT_KIND = "cifar"


def attackable_datasets():
    from dcnet_keras.data.registry import DATASETS

    return tuple(name for name in DATASETS.names()
                 if DATASETS.get(name).input_kind == INPUT_KIND)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m dcnet_keras.attack",
        description="Top-1 accuracy of a trained model under an FGSM or BIM attack "
                    "(white-box, or black-box with --source_model).",
        epilog=CHECKPOINT_MODEL_HELP, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", help=".keras file, SavedModel folder, or a model_dir or "
                                      "checkpoint prefix of our runs (or --tf1 the original's)")
    parser.add_argument("--attack", default="fgsm", help=f"one of {', '.join(ATTACKS)}")
    parser.add_argument("--epsilon", default=str(DEFAULT_EPSILON),
                        help="the perturbation bound, grey levels of the 0..255 input")
    parser.add_argument("--step", default=str(DEFAULT_BIM_STEP),
                        help="BIM: grey levels per iteration")
    parser.add_argument("--iterations", default=str(DEFAULT_BIM_ITERATIONS),
                        help="BIM: number of steps")
    parser.add_argument("--loss", default="softmax", choices=ATTACK_LOSSES,
                        help="the loss the attack ascends: softmax (-log softmax[label]) or "
                             "training (the model's label-smoothed training loss)")
    parser.add_argument("--source_model", default=None,
                        help="black-box: craft the images on this model (a .keras file, a "
                             "SavedModel folder or a run with model_spec.json) instead")
    parser.add_argument("--tf1", action="store_true", help="MODEL is an original TF1 checkpoint")
    add_model_flags(parser)
    parser.add_argument("--dataset", default=None, metavar="DATASET",
                        help=f"one of {', '.join(attackable_datasets())} (default: the run's "
                             "model_spec.json's, the preset's, else cifar100)")
    parser.add_argument("--source", default=None,
                        help="the dataset's format: auto, binary, pickle, tfds, synthetic")
    parser.add_argument("--data_dir", default=None, help="the dataset's folder")
    parser.add_argument("--batch_size", default="100")
    parser.add_argument("--max_images", default=None,
                        help="attack only the first N test images (default: all)")
    return parser


def _number(flag, text, check, kind=float):
    """``check(flag, kind(text))``: a flag's value, or a one-line ValueError naming both."""
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{flag}: expected {'an integer' if kind is int else 'a number'}, "
                         f"received {text!r}") from None
    return check(flag, value)


def check_flags(args):
    """The flags' values (``epsilon``, ``step``, ``iterations``, ``batch_size``,
    ``max_images``, ``attack``, ``dataset``) and that MODEL and ``--source_model`` exist;
    one-line ``ValueError`` / ``FileNotFoundError`` naming the flag and the value."""
    from dcnet_keras import validation

    args.epsilon = _number("--epsilon", args.epsilon, validation.non_negative_float)
    args.step = _number("--step", args.step, validation.positive_float)
    args.iterations = _number("--iterations", args.iterations, validation.positive_int, int)
    args.batch_size = _number("--batch_size", args.batch_size, validation.positive_int, int)
    if args.max_images is not None:
        args.max_images = _number("--max_images", args.max_images, validation.positive_int,
                                  int)
    validation.choice("--attack", args.attack, ATTACKS)
    if args.dataset is not None:
        validation.choice("--dataset", args.dataset, attackable_datasets())
    for flag, path in (("model", args.model), ("--source_model", args.source_model)):
        if path is not None and not (os.path.exists(path) or os.path.exists(path + ".index")):
            raise FileNotFoundError(f"{flag}: nothing at {path!r} (expected a .keras file, a "
                                    "SavedModel folder, a model_dir or a checkpoint prefix)")
    return args


def _attackable(dataset):
    if dataset.input_kind != INPUT_KIND:
        raise ValueError(f"--dataset: the attacks take 0..255 RGB images (datasets "
                         f"{', '.join(attackable_datasets())}); dataset {dataset.name!r} has "
                         f"{dataset.input_kind} images")
    return dataset


def _needs_tensorflow(flag, path):
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(f"{flag}: {path!r} is a SavedModel (a TensorFlow graph): crafting "
                         f"images on it needs KERAS_BACKEND=tensorflow, the backend is "
                         f"{backend!r}")


def load_target(args):
    """``(predict, data)``: MODEL's inference-mode logits function and the opened test data,
    checked to fit each other (as ``evaluate`` loads and checks them)."""
    from dcnet_keras import evaluate
    from dcnet_keras.data.registry import get_dataset
    from dcnet_keras.export.loaders import is_saved_model

    path = args.model
    saved = is_saved_model(path)
    if saved and args.source_model is None:
        _needs_tensorflow("model", path)
    if not (path.endswith(".keras") or saved):  # a checkpoint: the data before the model
        dataset = _attackable(get_dataset(evaluate.dataset_name(args, checkpoint=True)))
        spec = evaluate.model_spec_for(args, dataset.num_classes)
        data = evaluate.open_data(dataset, args)
        predict, kind = evaluate.load_predict(path, spec, args.tf1)
    else:
        predict, kind = evaluate.load_predict(path)
        dataset = _attackable(get_dataset(evaluate.dataset_name(args, kind)))
        data = evaluate.open_data(dataset, args)
    evaluate.check_fit(predict, kind, dataset)
    return predict, dataset, data


def load_source(path, dataset):
    """``--source_model``'s inference-mode logits function, checked to fit ``dataset``."""
    from dcnet_keras import evaluate
    from dcnet_keras.export.errors import one_line
    from dcnet_keras.export.loaders import is_saved_model
    from dcnet_keras.export.spec_file import SPEC_FILE, find_spec_file

    if is_saved_model(path):
        _needs_tensorflow("--source_model", path)
    elif not path.endswith(".keras") and find_spec_file(path) is None:
        raise ValueError(f"--source_model: {path!r} is a checkpoint without {SPEC_FILE} (the "
                         "model flags describe MODEL only); give a .keras file, a SavedModel "
                         f"folder or a run with {SPEC_FILE}")
    try:
        predict, kind = evaluate.load_predict(path)
        evaluate.check_fit(predict, kind, dataset)
    except ValueError as error:  # ExportError, the fit: say it is about the source model
        message = one_line(error)
        for prefix in ("--dataset: ", "model: "):
            if message.startswith(prefix):
                message = message[len(prefix):]
        raise ValueError(f"--source_model: {path!r}: {message}") from None
    return predict


def _compiled(predict):
    """``predict`` as a ``tf.function`` on the TensorFlow backend (graph speed for the
    forward and backward passes of every batch); as it is elsewhere."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return predict
    import tensorflow as tf

    return tf.function(predict, reduce_retracing=True)


def attack_batches(data, batch_size, max_images=None):
    """``(images, labels)`` NumPy batches of the test split, the first ``max_images`` only."""
    left = max_images
    for images, labels in data.test_dataset(batch_size):
        images, labels = images.numpy(), labels.numpy()
        if left is not None:
            images, labels = images[:left], labels[:left]
            left -= len(labels)
        if len(labels):
            yield images, labels
        if left is not None and left <= 0:
            return


def main(argv=None):
    """Run the CLI on ``argv``; return ``dict(clean=a, adversarial=b, images=n)``."""
    args = build_parser().parse_args(argv)
    import tensorflow as tf

    from dcnet_keras.attacks import attack_accuracy
    from dcnet_keras.export.errors import one_line

    data = None
    try:
        args = check_flags(args)
        target, dataset, data = load_target(args)
        source = None if args.source_model is None else load_source(args.source_model, dataset)
        result = attack_accuracy(_compiled(target), attack_batches(data, args.batch_size,
                                                                args.max_images),
                                 args.attack, args.epsilon, args.step, args.iterations,
                                 source_fn=None if source is None else _compiled(source),
                                 loss=args.loss)
    except tf.errors.OpError as error:  # from the input pipeline or a SavedModel's graph
        explain = getattr(data, "explain", None)
        sys.exit(f"error: {explain(error) if explain else one_line(error)}")
    except (ValueError, OSError) as error:  # DataError, ExportError, the flags
        sys.exit(f"error: {one_line(error)}")
    print(f"clean: accuracy={result['clean']:.4f} over {result['images']} images")
    print(f"{args.attack} eps={args.epsilon:g}: accuracy={result['adversarial']:.4f} over "
          f"{result['images']} images")
    return result


if __name__ == "__main__":
    main()
