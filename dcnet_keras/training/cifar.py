"""The original CIFAR-100 script (``dcnet_cifar100/<variant>/train_resnet.py``).

The training CLI (:mod:`dcnet_keras.training.cli`) with the preset ``<variant>``
fixed: the CIFAR ResNet-32, CIFAR-100, recipe ``dcnet_cifar`` (Adam 1e-3 x0.1
from 20000, 30000, 37500; 42500 iterations of batch 128; a test every 500; a
checkpoint every 10000), logs in ``log/<variant>/``.  Its flags are the
original port's: ``--dataset`` is the data's format.
"""

import sys

from dcnet_keras.presets import PRESETS
from dcnet_keras.training.cli import script_parser, train_from_args
from dcnet_keras.variants import parse_variant

SOURCE_HELP = ("auto: --data_dir if given, else <repo>/cifar-100-binary if it exists, else tfds "
               "cifar100 (downloads on first use); synthetic: a small built-in learnable set, "
               "offline")
DATA_DIR_HELP = ("folder with train.bin/test.bin (original binary) or train/test (python "
                 "pickles); for tfds, its data_dir")


def build_parser(variant):
    return script_parser(
        variant, "train_resnet.py",
        f"Train the CIFAR-100 DCNet '{variant}' as the original script does.", SOURCE_HELP,
        data_dir_help=DATA_DIR_HELP)


def main(variant, repo_root=None, argv=None):
    """Parse ``argv`` and train ``variant``; returns a :class:`~dcnet_keras.training.loop.RunResult`.

    ``variant``: one of the CIFAR ResNet presets (the original five and ``baseline``) or any
    other ``<magnitude>_<angular>`` pair, trained as the presets are (logs in
    ``log/<variant>/``).  Bad input (data, variant, arguments) ends the process with a
    one-line message.
    """
    if variant in PRESETS and PRESETS.get(variant).network == "cifar_resnet32":
        return train_from_args(build_parser(variant).parse_args(argv), repo_root)
    try:
        parse_variant(variant)
    except ValueError as error:
        sys.exit(f"error: {error}")
    args = build_parser("tanh_cos").parse_args(argv)
    args.preset, args.network, args.variant, args.run_name = (None, "cifar_resnet32", variant,
                                                              variant)
    return train_from_args(args, repo_root)


if __name__ == "__main__":
    import argparse

    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--variant", default="tanh_cos")
    known, rest = chooser.parse_known_args()
    main(known.variant, argv=rest)
