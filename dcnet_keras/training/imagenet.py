"""The original ImageNet script (``dcnet_imagenet/train_DCNet.py``), working.

The training CLI (:mod:`dcnet_keras.training.cli`) with the preset ``imagenet``
fixed: the modified ResNet-18 (TanhConv + cosine, PReLU), recipe
``dcnet_imagenet`` (TF1 momentum 0.9, lr 0.1 /10 from 200000, 375000, 550000;
700001 iterations of batch 40; top-1 / top-5 on the validation set every 4000;
a checkpoint every 100000).  Log lines in the original's formats (it printed
them; we print them and also keep them in ``log/imagenet/``).
"""

from dcnet_keras.training.cli import script_parser, train_from_args

NAME = "imagenet"


def build_parser():
    return script_parser(
        NAME, "train_DCNet.py", "Train the ImageNet DCNet (modified ResNet-18) as the original "
        "script meant to.",
        "tfrecord: the original's shards (labels 1..1000); tfds: imagenet2012 (labels 0..999)",
        data_dir="imagenet-data",
        data_dir_help="folder of slim-style TFRecord shards train-* and validation-* (or, with "
                      "--dataset tfds, the tfds manual download folder)")


def main(repo_root=None, argv=None):
    """Parse ``argv`` and train; bad input ends with a one-line message."""
    return train_from_args(build_parser().parse_args(argv), repo_root)
