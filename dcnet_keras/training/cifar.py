"""The original CIFAR-100 training run (``dcnet_cifar100/<variant>/train_resnet.py``).

Recipe (SPEC §4-6): Adam(1e-3, epsilon 1e-8) x0.1 from iterations 20000, 30000
and 37500; 42500 iterations of batch 128; pad-4 symmetric crop + flip through a
20000-example shuffle buffer; one ordered pass over the test set every 500
iterations; weight projection after updates 101, 201, ...; a checkpoint every
10000 iterations and at the end.  Logs in the original's formats and places,
TensorBoard scalars, a progress bar; resumable; any ``tf.distribute`` strategy.
"""

import argparse
import os
import sys

from dcnet_keras.variants import parse_variant

DEFAULTS = dict(base_lr=1e-3, batch_size=128, max_steps=42500, eval_every=500, log_every=100,
                checkpoint_every=10000, widths=(96, 192, 384), units_per_stage=5)


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
        return value
    return parse


def build_parser(variant):
    p = argparse.ArgumentParser(
        prog="train_resnet.py",
        description=f"Train the CIFAR-100 DCNet '{variant}' as the original script does.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--base_lr", type=positive(float), default=DEFAULTS["base_lr"],
                   help="initial learning rate (x0.1 from iterations 20000, 30000, 37500)")
    p.add_argument("--batch_size", type=positive(int), default=DEFAULTS["batch_size"],
                   help="global batch, split over the replicas")
    p.add_argument("--max_steps", type=positive(int), default=DEFAULTS["max_steps"],
                   help="training iterations")
    p.add_argument("--eval_every", type=positive(int), default=DEFAULTS["eval_every"],
                   help="test-set pass every this many iterations")
    p.add_argument("--log_every", type=positive(int), default=DEFAULTS["log_every"],
                   help="log_train.txt line every this many iterations")
    p.add_argument("--checkpoint_every", type=positive(int),
                   default=DEFAULTS["checkpoint_every"],
                   help="checkpoint every this many iterations (and at the end)")
    p.add_argument("--dataset", default="auto",
                   choices=("auto", "binary", "pickle", "tfds", "synthetic"),
                   help="auto: --data_dir if given, else <repo>/cifar-100-binary if it exists, "
                        "else tfds cifar100 (downloads on first use); synthetic: a small "
                        "built-in learnable set, offline")
    p.add_argument("--data_dir", default=None,
                   help="folder with train.bin/test.bin (original binary) or train/test "
                        "(python pickles); for tfds, its data_dir")
    p.add_argument("--model_dir", default=None, help="checkpoints and exported models "
                   "(default <repo>/model/<variant>)")
    p.add_argument("--log_dir", default=None, help="log_train.txt, log_test.txt, TensorBoard "
                   "(default <repo>/log/<variant>)")
    p.add_argument("--strategy", default="auto",
                   choices=("auto", "mirrored", "one_device", "multiworker"),
                   help="auto: MirroredStrategy over all GPUs if several, else one device; "
                        "multiworker reads TF_CONFIG")
    p.add_argument("--seed", type=int, default=0, help="initialisation and data order")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic ops: a resumed run ends with exactly the weights of an "
                        "uninterrupted one (slower)")
    p.add_argument("--widths", type=positive(int), nargs=3, default=list(DEFAULTS["widths"]),
                   help="stage widths (small values for quick runs)")
    p.add_argument("--units_per_stage", type=positive(int), default=DEFAULTS["units_per_stage"],
                   help="residual units per stage")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the newest checkpoint in --model_dir")
    p.add_argument("--debias_moving_averages", action="store_true",
                   help="zero-debias the moving averages (the original does not: its "
                        "inference-mode accuracy means little before ~2000 iterations)")
    p.add_argument("--no_export", action="store_true",
                   help="skip the final .keras file and SavedModel")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show a progress bar")
    return p


def main(variant, repo_root=None, argv=None):
    """Parse ``argv`` and train ``variant``; returns a :class:`~dcnet_keras.training.cifar_run.RunResult`.

    Bad input (data, variant, arguments) ends the process with a one-line message.
    """
    try:
        parse_variant(variant)
    except ValueError as error:
        sys.exit(f"error: {error}")
    args = build_parser(variant).parse_args(argv)
    repo_root = os.path.abspath(repo_root or os.getcwd())
    from dcnet_keras.data.cifar100 import DataError
    from dcnet_keras.training.cifar_run import run

    try:
        return run(variant, repo_root, args)
    except (DataError, ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--variant", default="tanh_cos")
    known, rest = parser.parse_known_args()
    main(known.variant, argv=rest)
