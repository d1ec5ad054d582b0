"""``python -m dcnet_keras.experiments table1|table2|table3|table7|table8 --preset tiny|full``.

Trains the table's grid (one run per cell, each in ``<out>/runs/<run_id>``: a rerun skips
finished runs and resumes unfinished ones), evaluates, writes ``<out>/<table>.md`` (the
paper's layout, ours beside the paper's number in every cell), ``<out>/<table>.json`` (the
raw results) and ``<out>/<table>_curves.png`` (fit and test accuracy of every run), and
prints the table.  ``--cells`` runs part of the grid (shell patterns on ``row/column``).
Bad input ends with one line ``error: ...`` before any training.
"""

import argparse
import fnmatch
import os
import sys
import time

TABLE_NAMES = ("table1", "table2", "table3", "table7", "table8")


def build_parser():
    from dcnet_keras.experiments.scales import SCALES

    parser = argparse.ArgumentParser(
        prog="python -m dcnet_keras.experiments",
        description="Rerun one of the paper's tables: train its grid, evaluate, write "
                    "<out>/<table>.md beside the paper's numbers.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("table", choices=TABLE_NAMES)
    parser.add_argument("--preset", default="tiny", choices=SCALES.names(),
                        help="tiny: minutes on a CPU (small widths, 60 iterations, synthetic "
                             "data unless --data_dir); full: the paper's scale (GPUs)")
    parser.add_argument("--data_dir", default=None,
                        help="the dataset's folder (CIFAR binary or pickle; for tfds its "
                             "data_dir); default: tiny the synthetic set, full auto/tfds")
    parser.add_argument("--source", default=None,
                        help="the data's format: auto, binary, pickle, tfds, synthetic")
    parser.add_argument("--out", default=None,
                        help="results folder (default experiments/<preset> in the current "
                             "folder)")
    parser.add_argument("--cells", nargs="+", default=None, metavar="PATTERN",
                        help="run only the cells whose 'row/column' matches a pattern "
                             "(case-insensitive shell patterns, e.g. 'Tanh*/*' 'baseline*')")
    parser.add_argument("--epsilon", type=float, default=None,
                        help="attack strength in grey levels (tables 7-8; default 8)")
    parser.add_argument("--step", type=float, default=None, help="BIM step (default 1)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="BIM iterations (default 10)")
    parser.add_argument("--adversarial_epsilon", type=float, default=None,
                        help="FGSM strength of adversarial training (default 8)")
    parser.add_argument("--no_figures", action="store_true",
                        help="skip <out>/<table>_curves.png")
    return parser


def selected(table, patterns):
    """The table's cells matching ``patterns`` (all without); a pattern matching no cell is
    a ValueError naming it."""
    if not patterns:
        return list(table.cells)
    chosen = []
    for pattern in patterns:
        matched = [c for c in table.cells
                   if fnmatch.fnmatch(c.key.lower(), pattern.lower())]
        if not matched:
            raise ValueError(f"--cells: {pattern!r} matches no cell of {table.name}; its cells "
                             f"are {', '.join(repr(c.key) for c in table.cells[:4])}, ...")
        chosen += [c for c in matched if c not in chosen]
    return chosen


def _check(args):
    """One-line errors for bad numbers, before anything is read or trained."""
    from dcnet_keras.validation import grey_levels

    for name in ("epsilon", "adversarial_epsilon"):
        if getattr(args, name) is not None:
            grey_levels(f"--{name}", getattr(args, name))
    if args.step is not None and not 0.0 < args.step <= 255.0:
        raise ValueError(f"--step: expected a positive number of grey levels, received "
                         f"{args.step!r}")
    if args.iterations is not None and args.iterations < 1:
        raise ValueError(f"--iterations: expected a positive integer, received "
                         f"{args.iterations!r}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise ValueError(f"--data_dir: no folder at {args.data_dir!r}")


def run_table(args, say=print):
    """Run the table ``args`` names; returns ``(values, markdown)``."""
    import dataclasses

    from dcnet_keras.experiments import report, runs
    from dcnet_keras.experiments.experiment import Experiment
    from dcnet_keras.experiments.scales import SCALES
    from dcnet_keras.experiments.tables import TABLES

    _check(args)
    table, scale = TABLES.get(args.table), SCALES.get(args.preset)
    cells = selected(table, args.cells)
    if args.adversarial_epsilon is not None:
        cells = [dataclasses.replace(c, training=dataclasses.replace(
            c.training, adversarial_epsilon=args.adversarial_epsilon))
            if c.training.adversarial != "none" else c for c in cells]
    out = os.path.abspath(args.out or os.path.join("experiments", args.preset))
    attack = {k: getattr(args, k) for k in ("epsilon", "step", "iterations")
              if getattr(args, k) is not None}
    experiment = Experiment(table, scale, out, args.source, args.data_dir, attack=attack,
                            say=say)
    started = time.time()
    values = {cell.key: experiment.value(cell) for cell in cells}
    seconds = time.time() - started
    trainings = {c.training.run_id: c.training for c in cells}
    results = {run_id: experiment.result(t) for run_id, t in trainings.items()}
    datasets = sorted({t.dataset for t in trainings.values()})
    data_lines = [f"{name}: {experiment.describe_data(name)}" for name in datasets]
    text = report.write(out, table, values, scale, results, data_lines, seconds)
    if not args.no_figures:
        from dcnet_keras.figures.curves_figure import curves_figure

        folders = [os.path.join(runs.run_folder(out, t), "log") for t in trainings.values()]
        logged = [f for f in folders if os.path.isfile(os.path.join(f, "log_test.txt"))]
        if logged:
            curves_figure(os.path.join(out, f"{table.name}_curves.png"), logged)
    say(text)
    return values, text


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run_table(args)
    except (ValueError, FileNotFoundError) as error:
        from dcnet_keras.export.errors import one_line

        sys.exit(f"error: {one_line(error)}")


if __name__ == "__main__":
    main()
