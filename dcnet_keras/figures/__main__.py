"""``python -m dcnet_keras.figures <figure> ...``: draw one of the paper's figures as a PNG.

    python -m dcnet_keras.figures operators --out figure3.png
    python -m dcnet_keras.figures curves LOG_DIR [LOG_DIR ...] --out curves.png [--labels A B]
    python -m dcnet_keras.figures features --out features.png [--preset tiny|full]
        [--dataset cifar10] [--source SOURCE] [--data_dir DIR] [--work_dir DIR]

Bad input (an unknown figure or preset, an ``--out`` that is not a writable ``.png``
path, a log folder without logs, ...) ends the process with one line, ``error: ...``, and
exit status 1, before any training.  The parent folder of ``--out`` is created.
"""

import argparse
import sys

from dcnet_keras.figures import FIGURES, check_out, require_matplotlib

PROG = "python -m dcnet_keras.figures"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``error: ...``, and exit status 1."""

    def error(self, message):
        sys.exit(f"error: {message} (see {PROG} --help)")


def build_parser():
    """The parser: one sub-command per figure (:data:`dcnet_keras.figures.FIGURES`)."""
    parser = _Parser(prog=PROG, description="Draw one of the paper's figures as a PNG "
                                            "(matplotlib, Agg; a fixed size in pixels).")
    figures = parser.add_subparsers(dest="figure", metavar="figure",
                                    help=f"one of {', '.join(FIGURES)}")
    figures.required = True

    operators = figures.add_parser(
        "operators", help="Figure 3: the magnitude functions h(|x|) (rho = 1) and the angular "
                          "functions g(theta); 1000 x 400 pixels")
    operators.add_argument("--out", required=True, help="the PNG to write")
    operators.add_argument("--points", type=int, default=201, help="samples per curve")

    curves = figures.add_parser(
        "curves", help="fit loss and test accuracy against iteration from runs' log folders "
                       "(log_train.txt, log_test.txt); 1200 x 450 pixels")
    curves.add_argument("log_dirs", nargs="+", metavar="LOG_DIR", help="a run's log folder")
    curves.add_argument("--out", required=True, help="the PNG to write")
    curves.add_argument("--labels", nargs="+", default=None,
                        help="one label per LOG_DIR (default: the folders' names, with the "
                             "parent folders it takes to tell them apart)")

    features = figures.add_parser(
        "features", help="2-D fc6 features of CNN-9 (fc_width 2): baseline, sphere_cos, "
                         "ball_cos, tanh_cos side by side; 1600 x 450 pixels")
    features.add_argument("--out", required=True, help="the PNG to write")
    features.add_argument("--preset", default="tiny",
                          help="tiny (widths 8 8 8, 60 iterations, synthetic by default) or "
                               "full (widths 128 192 256, the spherenet_cnn9 recipe)")
    features.add_argument("--dataset", default="cifar10", help="a 10-class dataset")
    features.add_argument("--source", default=None,
                          help="the data's format (default: synthetic for tiny, auto for full)")
    features.add_argument("--data_dir", default=None, help="the data folder")
    features.add_argument("--work_dir", default=None,
                          help="the runs' folder: model/<variant>, log/<variant> (default: "
                               "<out's folder>/features_runs/<preset>-<dataset>-<source>)")
    features.add_argument("--seed", type=int, default=0, help="the runs' seed")
    return parser


def _operators(args):
    from dcnet_keras.figures.operators_figure import operators_figure

    check_out(args.out)
    return operators_figure(args.out, args.points)


def _curves(args):
    from dcnet_keras.figures.curves_figure import curves_figure

    return curves_figure(args.out, args.log_dirs, args.labels)


def _features(args):
    from dcnet_keras.figures import features_figure as ff

    out = check_out(args.out)
    preset = ff.get_preset(args.preset)
    spec = ff.check_dataset(args.dataset)
    source = args.source or preset.source
    if source not in spec.sources:
        raise ValueError(f"--source: dataset {args.dataset!r} has no source {source!r}; "
                         f"expected one of {', '.join(spec.sources)}")
    work_dir = args.work_dir or ff.default_work_dir(out, preset.name, args.dataset, source)
    ff.check_runs(ff.run_configs(preset, work_dir, args.dataset, seed=args.seed))
    import tensorflow as tf

    data = ff.open_data(preset, args.dataset, source, args.data_dir)
    print(f"==== data: {data.description}", flush=True)
    try:
        return ff.features_figure(out, preset.name, data=data, work_dir=work_dir,
                                  dataset=args.dataset, seed=args.seed).path
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        sys.exit(f"error: {data.explain(error)}")


def _first_line(error):
    """The first line of ``error``'s message (its type's name when it has none)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


COMMANDS = {"operators": _operators, "curves": _curves, "features": _features}


def main(argv=None):
    """Parse ``argv``, draw the figure, print ``wrote <path>``; returns the path (a one-line
    ``error: ...`` and exit status 1 on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        require_matplotlib()
        path = COMMANDS[args.figure](args)
    except (ValueError, OSError, ImportError) as error:  # DataError is a ValueError
        sys.exit(f"error: {_first_line(error)}")
    print(f"wrote {path}", flush=True)
    return path


if __name__ == "__main__":
    main()
