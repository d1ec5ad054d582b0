"""``python -m dcnet_keras.export``: a trained DCNet as a SavedModel for TF Serving.

    python -m dcnet_keras.export model/tanh_cos/tanh_cos.keras --out serving/tanh_cos
    python -m dcnet_keras.export model/tanh_cos --variant tanh_cos --out serving/tanh_cos
    python -m dcnet_keras.export model/cnn9_tanh_cos --preset cnn9_tanh_cos --out serving/cnn9
    python -m dcnet_keras.export path/model.ckpt --tf1 --variant imagenet \\
        --widths 128 256 512 1024 --out serving/imagenet

MODEL is a ``.keras`` file, a training run's model_dir (its newest checkpoint),
a checkpoint folder or prefix, or with ``--tf1`` a checkpoint of the original
TF1 scripts.  A checkpoint's model is named by the shared model flags
(:mod:`dcnet_keras.model_flags`, where ``--variant`` alone names a preset or a
CIFAR ResNet-32 operator), or by the run's ``model_spec.json``.  The
SavedModel goes to ``OUT/VERSION/``.  Bad input ends the process with one line
``error: ...`` and exit code 1.
"""

import argparse
import os
import sys

from dcnet_keras.model_flags import add_model_flags

CHECKPOINT_MODEL_HELP = (
    "A checkpoint's model: --preset, or --network with --variant, --widths, ...; --variant "
    "alone: a preset's name means that preset (tanh_cos, imagenet, cnn9_ball_cos, ...), any "
    "other variant the cifar_resnet32 with it; no model flags: the run's model_spec.json, "
    "else the preset tanh_cos. python -m dcnet_keras.list shows networks and presets.")


def build_parser():
    from dcnet_keras.export.signatures import KINDS

    p = argparse.ArgumentParser(
        prog="python -m dcnet_keras.export",
        description="Export a trained DCNet (a .keras file, a training checkpoint, or a "
                    "checkpoint of the original TF1 scripts) as a SavedModel for TF Serving "
                    "in OUT/VERSION/.",
        epilog=CHECKPOINT_MODEL_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help=".keras file; or a model_dir / checkpoint folder / prefix of "
                                 "a training run; or (--tf1) an original TF1 checkpoint")
    p.add_argument("--out", required=True, help="base folder; the model goes to OUT/VERSION/")
    p.add_argument("--version", type=int, default=1, help="version subfolder (positive)")
    p.add_argument("--tf1", action="store_true", help="MODEL is an original TF1 checkpoint")
    add_model_flags(p)
    p.add_argument("--kind", choices=KINDS, default=None,
                   help="cifar or imagenet signatures (default: the network's, or from a "
                        ".keras model's input shape)")
    p.add_argument("--class_names", default=None,
                   help="text file, one class name per line: adds class_name outputs")
    p.add_argument("--allow_untrained", action="store_true",
                   help="export even if every moving average is 0 (an untrained model)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT/VERSION")
    return p


def read_class_names(path):
    """The non-blank lines of the text file ``path``, one class name each."""
    from dcnet_keras.export.errors import ExportError

    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\r\n") for line in f if line.strip()]
    except OSError as error:
        raise ExportError(f"class_names: cannot read {path!r}: {error.strerror}") from None


def main(argv=None):
    """Run the CLI on ``argv``; return the path of the version folder written."""
    args = build_parser().parse_args(argv)
    from dcnet_keras.export.errors import ExportError, one_line
    from dcnet_keras.export.loaders import load_model
    from dcnet_keras.export.saved_model import export_saved_model
    from dcnet_keras.export.spec_file import find_spec_file
    from dcnet_keras.model_flags import model_spec, names_a_model

    try:
        if args.version < 1:
            raise ExportError(f"version: expected a positive integer, received {args.version}")
        class_names = read_class_names(args.class_names) if args.class_names else None
        spec = None
        if not args.model.endswith(".keras") and (
                os.path.exists(args.model) or os.path.exists(args.model + ".index")) and (
                args.tf1 or names_a_model(args) or find_spec_file(args.model) is None):
            spec = model_spec(args, default="tanh_cos")  # else: the run's model_spec.json
        model, kind = load_model(args.model, spec, tf1=args.tf1)
        path = export_saved_model(model, args.out, args.version, args.kind or kind,
                                  class_names, args.allow_untrained, args.overwrite)
    except (ValueError, OSError) as error:  # ExportError, CheckpointMismatchError, DataError
        sys.exit(f"error: {one_line(error)}")
    print(f"exported {path}")
    return path
