"""The original ImageNet training run (``dcnet_imagenet/train_DCNet.py``), working.

Recipe (SPEC §4-6): the modified ResNet-18 (TanhConv + cosine, PReLU), TF1
momentum SGD 0.9, lr 0.1 divided by 10 from iterations 200000, 375000 and
550000; 700001 iterations of batch 40; weight projection after updates 101,
201, ...; top-1 / top-5 on the whole validation set every 4000 iterations;
a checkpoint every 100000.  Log lines in the original's formats (it printed
them; we print them and also keep them in ``log/imagenet/``).
"""

import argparse
import os
import sys

from dcnet_keras.schedules import IMAGENET_DROPS, IMAGENET_STEPS
from dcnet_keras.training.flags import add_common_flags

NAME = "imagenet"
DEFAULTS = dict(base_lr=0.1, batch_size=40, max_steps=IMAGENET_STEPS, eval_every=4000,
                log_every=500, checkpoint_every=100000, widths=(128, 256, 512, 1024),
                drops=", ".join(str(d) for d in IMAGENET_DROPS))


def train_line(i, m):
    return "====iteration_%d: fit=%.4f, reg=%.4f, orth=%.4f, top1=%.4f, top5=%.4f" % (
        i, m["fit"], m["reg"], m["orth"], m["top1"], m["top5"])


def test_line(i, accuracy):
    return "++++iteration_%d: top1=%.4f, top5=%.4f" % (i, accuracy[1], accuracy[5])


def build_parser():
    parser = argparse.ArgumentParser(
        prog="train_DCNet.py", description="Train the ImageNet DCNet (modified ResNet-18) as "
        "the original script meant to.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_common_flags(parser, DEFAULTS, NAME)
    parser.add_argument("--data_dir", default="imagenet-data",
                        help="folder of slim-style TFRecord shards train-* and validation-* "
                             "(or, with --dataset tfds, the tfds manual download folder)")
    parser.add_argument("--dataset", default="tfrecord", choices=("tfrecord", "tfds"),
                        help="tfrecord: the original's shards (labels 1..1000); tfds: "
                             "imagenet2012 (labels 0..999)")
    parser.add_argument("--shuffle_buffer", type=int, default=10000,
                        help="records in the shuffle buffer (encoded JPEGs, ~110 kB each)")
    parser.add_argument("--num_classes", type=int, default=1000, help=argparse.SUPPRESS)
    return parser


def make_recipe(args):
    from dcnet_keras.data import imagenet
    from dcnet_keras.models import build_imagenet_resnet
    from dcnet_keras.optimizers import imagenet_optimizer
    from dcnet_keras.schedules import imagenet_schedule
    from dcnet_keras.training.loop import Recipe

    if args.dataset == "tfrecord":  # fail now, with the missing folder or pattern named
        imagenet.shard_files(args.data_dir, "train")
        imagenet.shard_files(args.data_dir, "validation")

    def export(model, model_dir):
        model.save(os.path.join(model_dir, f"{NAME}.keras"))
        from dcnet_keras.export import export_saved_model

        export_saved_model(model, os.path.join(model_dir, "saved_model"), kind="imagenet",
                           overwrite=True)

    return Recipe(
        name=NAME,
        build_model=lambda: build_imagenet_resnet(args.num_classes, tuple(args.widths),
                                                  zero_debias=args.debias_moving_averages),
        make_optimizer=lambda: imagenet_optimizer(imagenet_schedule(args.base_lr)),
        train_dataset=lambda start: imagenet.train_dataset(
            args.data_dir, args.batch_size, args.seed + start, shuffle_buffer=args.shuffle_buffer,
            source=args.dataset),
        eval_dataset=lambda: imagenet.eval_dataset(args.data_dir, args.batch_size,
                                                   source=args.dataset),
        train_line=train_line, test_line=test_line, export=export, checkpoint_input=False)


def _bad_record_message(args, error):
    """One line naming the shard and record that stopped the input pipeline."""
    first_line = error.message.strip().splitlines()[0]
    if args.dataset != "tfrecord":
        return first_line
    from dcnet_keras.data.imagenet import find_bad_record, shard_files

    print("==== the input pipeline failed; scanning the shards for the bad record ...",
          file=sys.stderr, flush=True)
    files = shard_files(args.data_dir, "train") + shard_files(args.data_dir, "validation")
    return find_bad_record(files) or first_line


def main(repo_root=None, argv=None):
    """Parse ``argv`` and train; bad input ends with a one-line message."""
    args = build_parser().parse_args(argv)
    repo_root = os.path.abspath(repo_root or os.getcwd())
    import tensorflow as tf

    from dcnet_keras.data.cifar100 import DataError
    from dcnet_keras.training.loop import run

    try:
        return run(make_recipe(args), args, repo_root)
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        sys.exit(f"error: {_bad_record_message(args, error)}")
    except (DataError, ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
