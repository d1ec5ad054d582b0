"""The paper's figures as PNG files, one command each (``python -m dcnet_keras.figures``).

* ``operators`` (:mod:`~dcnet_keras.figures.operators_figure`): Figure 3, the magnitude
  functions ``h(|x|)`` and the angular functions ``g(theta)``, sampled from
  :mod:`dcnet_keras.operators`; 1000 x 400 pixels.
* ``curves`` (:mod:`~dcnet_keras.figures.curves_figure`): fit loss and test accuracy
  against iteration, read from the log folders of any runs; 1200 x 450 pixels.
* ``features`` (:mod:`~dcnet_keras.figures.features_figure`): the 2-D features of CNN-9
  with a two-unit ``fc6`` (baseline, sphere_cos, ball_cos, tanh_cos), trained by the
  project's training loop; 1600 x 450 pixels.

Every figure has a fixed size in inches and a fixed dpi (module constants
``FIGURE_SIZE_INCHES``, ``FIGURE_DPI``, ``FIGURE_SIZE_PIXELS``), and the PNG is exactly
that many pixels.  The figures are drawn on a ``matplotlib.figure.Figure`` with the Agg
canvas (no pyplot, no global state), and written beside the target and renamed into it.
matplotlib is imported only when a figure is drawn: ``import dcnet_keras`` and
``import dcnet_keras.figures`` never need it.

This module holds what the figures share: :func:`require_matplotlib`, :func:`check_out`,
:func:`new_figure`, :func:`save_png`.
"""

import os
import tempfile

#: the figures the command draws, in the order ``--help`` lists them.
FIGURES = ("operators", "curves", "features")


def check_out(out, flag="--out"):
    """The absolute path of the PNG ``out``, or a one-line ValueError naming ``flag``.

    ``out`` must end in ``.png`` and must not be a folder; its parent folder is created
    when the PNG is written, so it must be (or be able to become) a writable folder.
    Checked without creating anything.
    """
    from dcnet_keras.training.preflight import check_folder

    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise ValueError(f"{flag}: expected the path of a .png file, received {out!r}")
    path = os.path.abspath(os.fspath(out))
    if not path.lower().endswith(".png"):
        raise ValueError(f"{flag}: expected a .png file, received {os.fspath(out)!r}")
    if os.path.isdir(path):
        raise ValueError(f"{flag}: {path} is a folder, expected a .png file")
    check_folder(os.path.dirname(path), flag)
    return path


def require_matplotlib():
    """Import matplotlib's ``Figure`` and Agg canvas, or raise a one-line ImportError saying
    how to install it (checked before any long work: the feature figure trains first)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(f"matplotlib is needed to draw the figures (pip install matplotlib): "
                          f"{error}") from None
    return Figure, FigureCanvasAgg


def new_figure(size_inches, dpi):
    """A ``matplotlib.figure.Figure`` of ``size_inches`` (width, height) at ``dpi``, with an
    Agg canvas attached (imports matplotlib)."""
    Figure, FigureCanvasAgg = require_matplotlib()
    figure = Figure(figsize=size_inches, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, out, dpi):
    """Write ``figure`` as the PNG ``out`` at ``dpi`` (no tight bounding box: the PNG is
    exactly the figure's size times ``dpi``), through a temporary file in the same folder
    renamed into place, so a reader sees the old file or the new one.  Returns the path."""
    path = check_out(out)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.partial-",
                                       suffix=".png", dir=folder)
    try:
        with os.fdopen(handle, "wb") as f:
            figure.savefig(f, format="png", dpi=dpi)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(staging, 0o666 & ~mask)  # mkstemp's 0600 would hide it from others
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return path


def pixel_size(size_inches, dpi):
    """``(width, height)`` in pixels of a figure of ``size_inches`` at ``dpi``."""
    return tuple(int(round(side * dpi)) for side in size_inches)
