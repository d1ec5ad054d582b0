"""The original CIFAR-100 training run (``dcnet_cifar100/<variant>/train_resnet.py``).

Recipe (SPEC §4-6): Adam(1e-3, epsilon 1e-8) x0.1 from iterations 20000, 30000
and 37500; 42500 iterations of batch 128; pad-4 symmetric crop + flip through a
20000-example shuffle buffer; one ordered pass over the test set every 500
iterations; weight projection after updates 101, 201, ...; a checkpoint every
10000 iterations and at the end.  Logs in the original's formats and places
(``log/<variant>/log_train.txt``, ``log_test.txt``), TensorBoard scalars, a
progress bar; resumable; any ``tf.distribute`` strategy.
"""

import argparse
import os
import sys

from dcnet_keras.schedules import CIFAR_DROPS, CIFAR_STEPS
from dcnet_keras.training.flags import add_common_flags, positive
from dcnet_keras.variants import parse_variant

NUM_CLASSES = 100
TEST_BATCH = 100
SHUFFLE_BUFFER = 20000
DEFAULTS = dict(base_lr=1e-3, batch_size=128, max_steps=CIFAR_STEPS, eval_every=500,
                log_every=100, checkpoint_every=10000, widths=(96, 192, 384),
                drops=", ".join(str(d) for d in CIFAR_DROPS))


def train_line(i, m):
    return "====iteration_%d: fit=%.4f, reg=%.4f, orth=%.4f, acc=%.4f" % (
        i, m["fit"], m["reg"], m["orth"], m["top1"])


def test_line(i, accuracy):
    return "++++iteration_%d: test acc=%.4f" % (i, accuracy[1])


def build_parser(variant):
    parser = argparse.ArgumentParser(
        prog="train_resnet.py",
        description=f"Train the CIFAR-100 DCNet '{variant}' as the original script does.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_common_flags(parser, DEFAULTS, variant)
    parser.add_argument("--units_per_stage", type=positive(int), default=5,
                        help="residual units per stage")
    parser.add_argument("--dataset", default="auto",
                        choices=("auto", "binary", "pickle", "tfds", "synthetic"),
                        help="auto: --data_dir if given, else <repo>/cifar-100-binary if it "
                             "exists, else tfds cifar100 (downloads on first use); synthetic: "
                             "a small built-in learnable set, offline")
    parser.add_argument("--data_dir", default=None,
                        help="folder with train.bin/test.bin (original binary) or train/test "
                             "(python pickles); for tfds, its data_dir")
    return parser


def make_recipe(variant, repo_root, args):
    from dcnet_keras.data.cifar100 import load_cifar100, test_dataset, train_dataset
    from dcnet_keras.models import build_cifar_resnet
    from dcnet_keras.optimizers import cifar_optimizer
    from dcnet_keras.schedules import cifar_schedule
    from dcnet_keras.training.loop import Recipe

    data = load_cifar100(args.dataset, args.data_dir,
                         default_binary_dir=os.path.join(repo_root, "cifar-100-binary"))
    print(f"==== data: {data.source}", flush=True)

    def export(model, model_dir):
        from dcnet_keras.export import export_saved_model

        model.save(os.path.join(model_dir, f"{variant}.keras"))
        export_saved_model(model, os.path.join(model_dir, "saved_model"), overwrite=True)

    return Recipe(
        name=variant,
        build_model=lambda: build_cifar_resnet(variant, NUM_CLASSES, tuple(args.widths),
                                               args.units_per_stage,
                                               zero_debias=args.debias_moving_averages),
        make_optimizer=lambda: cifar_optimizer(cifar_schedule(args.base_lr)),
        train_dataset=lambda start: train_dataset(data.train_images, data.train_labels,
                                            args.batch_size, seed=args.seed,
                                            shuffle_buffer=SHUFFLE_BUFFER),
        eval_dataset=lambda: test_dataset(data.test_images, data.test_labels, TEST_BATCH),
        train_line=train_line, test_line=test_line, export=export)


def main(variant, repo_root=None, argv=None):
    """Parse ``argv`` and train ``variant``; returns a :class:`~dcnet_keras.training.loop.RunResult`.

    Bad input (data, variant, arguments) ends the process with a one-line message.
    """
    try:
        parse_variant(variant)
    except ValueError as error:
        sys.exit(f"error: {error}")
    args = build_parser(variant).parse_args(argv)
    repo_root = os.path.abspath(repo_root or os.getcwd())
    from dcnet_keras.data.cifar100 import DataError
    from dcnet_keras.training.loop import run

    try:
        return run(make_recipe(variant, repo_root, args), args, repo_root)
    except (DataError, ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--variant", default="tanh_cos")
    known, rest = parser.parse_known_args()
    main(known.variant, argv=rest)
