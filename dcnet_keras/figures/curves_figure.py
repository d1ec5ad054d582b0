"""Training curves of any runs: fit loss and test accuracy against iteration.

Read from each run's log folder (``log_train.txt`` and ``log_test.txt``, written by
:mod:`dcnet_keras.training.run_logs`), in either of its formats:

* ``acc`` (CIFAR): ``====iteration_<i>: fit=<f>, reg=<r>, orth=<o>, acc=<a>`` and
  ``++++iteration_<i>: test acc=<a>``;
* ``top1_top5`` (ImageNet): ``====iteration_<i>: fit=<f>, reg=<r>, orth=<o>,
  top1=<a>, top5=<b>`` and ``++++iteration_<i>: top1=<a>, top5=<b>`` (the test accuracy
  drawn is top1).

Two panels: left the fit loss (the cross-entropy term ``fit``, without the
regularisation terms) against the iteration of each training line, right the test
accuracy (a fraction, 0..1) against the iteration of each test line; one line per run,
labelled by its folder's name (with the parents it takes to tell the runs apart) or by
``--labels``.

The PNG is 12 x 4.5 inches at 100 dpi: 1200 x 450 pixels (:data:`FIGURE_SIZE_PIXELS`).

    python -m dcnet_keras.figures curves log/tanh_cos log/ball_cos --out curves.png
"""

import os
import re

import numpy as np

from dcnet_keras.figures import check_out, new_figure, pixel_size, save_png
from dcnet_keras.training.run_logs import TEST_LOG, TRAIN_LOG, parse_test_line

FIGURE_SIZE_INCHES = (12.0, 4.5)
FIGURE_DPI = 100
#: ``(width, height)`` of the PNG.
FIGURE_SIZE_PIXELS = pixel_size(FIGURE_SIZE_INCHES, FIGURE_DPI)  # (1200, 450)

_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|nan|inf))"
#: a training line of either format (group 1: the iteration, group 2: fit).
TRAIN_LINE = re.compile(
    r"^====iteration_(\d+): fit=" + _NUMBER + r", reg=" + _NUMBER + r", orth=" + _NUMBER
    + r", (?:acc=" + _NUMBER + r"|top1=" + _NUMBER + r", top5=" + _NUMBER + r")\s*$")
LOG_FORMATS = ("acc", "top1_top5")


def _lines(path):
    """The complete lines of ``path`` (a last line without its newline was being written
    when the run stopped, and is left out)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line for line in f.readlines() if line.endswith("\n")]


def _by_iteration(pairs):
    """``(iterations, values)`` arrays sorted by iteration; a repeated iteration keeps its
    last value."""
    table = dict(pairs)
    iterations = sorted(table)
    return (np.asarray(iterations, np.int64),
            np.asarray([table[i] for i in iterations], np.float64))


def read_curves(log_dir):
    """The curves of one run's log folder ``log_dir``.

    Returns ``dict(train_iterations, fit, test_iterations, test_accuracy)``: int64 and
    float64 NumPy arrays, sorted by iteration; ``fit`` from the training lines,
    ``test_accuracy`` the test lines' ``acc`` (format ``acc``) or ``top1`` (format
    ``top1_top5``).  Lines of neither format are skipped.  A folder without
    ``log_train.txt`` and ``log_test.txt`` is a one-line ValueError naming it.
    """
    folder = os.path.abspath(os.fspath(log_dir))
    missing = [name for name in (TRAIN_LOG, TEST_LOG)
               if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        what = "no such folder" if not os.path.isdir(folder) else f"no {' / '.join(missing)}"
        raise ValueError(f"log folder {folder}: {what} (expected the log folder of a training "
                         f"run, with {TRAIN_LOG} and {TEST_LOG})")
    train = []
    for line in _lines(os.path.join(folder, TRAIN_LOG)):
        match = TRAIN_LINE.match(line)
        if match is not None:
            train.append((int(match.group(1)), float(match.group(2))))
    test = []
    for line in _lines(os.path.join(folder, TEST_LOG)):
        for log_format in LOG_FORMATS:
            parsed = parse_test_line(log_format, line)
            if parsed is not None:
                test.append((parsed[0], parsed[1][1]))
                break
    train_iterations, fit = _by_iteration(train)
    test_iterations, test_accuracy = _by_iteration(test)
    return dict(train_iterations=train_iterations, fit=fit, test_iterations=test_iterations,
                test_accuracy=test_accuracy)


def default_labels(log_dirs):
    """The runs' labels: each folder's name, with as many of its parent folders as it
    takes to tell the runs apart (``log/tanh_cos``, ``log/ball_cos`` -> ``tanh_cos``,
    ``ball_cos``; ``a/tanh_cos/log``, ``b/tanh_cos/log`` -> ``a/tanh_cos/log``,
    ``b/tanh_cos/log``)."""
    parts = [os.path.normpath(os.path.abspath(os.fspath(d))).strip(os.sep).split(os.sep)
             for d in log_dirs]
    depth = 1
    while True:
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels) or depth >= max(len(p) for p in parts):
            return labels
        depth += 1


def check_labels(log_dirs, labels):
    """The labels of ``log_dirs``: ``labels`` (one per folder, else a one-line ValueError
    naming ``--labels``) or :func:`default_labels`."""
    if labels is None:
        return default_labels(log_dirs)
    labels = list(labels)
    if len(labels) != len(log_dirs):
        raise ValueError(f"--labels: expected one label per log folder ({len(log_dirs)}), "
                         f"received {len(labels)}: {labels!r}")
    return labels


def draw(figure, runs):
    """Draw the two panels on ``figure`` from ``runs``: ``[(label, read_curves(...))]``."""
    fit_axes, test_axes = figure.subplots(1, 2)
    for index, (label, curves) in enumerate(runs):
        color = f"C{index % 10}"
        fit_axes.plot(curves["train_iterations"], curves["fit"], color=color, label=label,
                      linewidth=1.2)
        test_axes.plot(curves["test_iterations"], curves["test_accuracy"], color=color,
                       label=label, linewidth=1.2, marker="." if len(
                           curves["test_iterations"]) < 30 else None)
    fit_axes.set_xlabel("iteration")
    fit_axes.set_ylabel("fit (cross-entropy)")
    fit_axes.set_title("training loss")
    test_axes.set_xlabel("iteration")
    test_axes.set_ylabel("test accuracy (top-1)")
    test_axes.set_title("test accuracy")
    for axes in (fit_axes, test_axes):
        axes.grid(alpha=0.3)
        if runs:
            axes.legend(fontsize=8)
    figure.tight_layout()  # the layout inside the fixed canvas; the PNG size is unchanged
    return figure


def curves_figure(out, log_dirs, labels=None):
    """Write the curves of the runs in ``log_dirs`` (labels: ``labels`` or
    :func:`default_labels`) to the PNG ``out``, 1200 x 450 pixels; returns its absolute path.  Every folder
    is read (and every argument checked) before anything is drawn."""
    out = check_out(out)
    log_dirs = [os.fspath(d) for d in log_dirs]
    if not log_dirs:
        raise ValueError("log_dirs: expected at least one log folder, received none")
    labels = check_labels(log_dirs, labels)
    runs = [(label, read_curves(d)) for label, d in zip(labels, log_dirs)]
    figure = new_figure(FIGURE_SIZE_INCHES, FIGURE_DPI)
    draw(figure, runs)
    return save_png(figure, out, FIGURE_DPI)
