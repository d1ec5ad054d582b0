"""The paper's Figure 3: the magnitude functions and the angular functions.

Left panel: ``h(|x|)`` for ``|x|`` in ``[0, 2]`` with ``rho = 1`` and ``alpha = 1``
(the betas are the library's defaults, :data:`dcnet_keras.operators.DEFAULT_BETA`:
0.5 for ``seg``, 1 for ``mix``):

==========  =========================================================
sphere      ``1``
ball        ``min(|x|, 1)``
tanh        ``tanh(|x|)``
linear      ``|x|``
seg         ``|x|`` if ``|x| < 1`` else ``0.5 |x| + 0.5``
log         ``log(1 + |x|)``
mix         ``|x| + log(1 + |x|)``
==========  =========================================================

Right panel: ``g(theta)`` for ``theta`` in ``[0, pi]``: ``linear`` ``1 - 2 theta / pi``,
``cos`` ``cos(theta)``, ``sqcos`` ``sign(cos theta) cos^2(theta)`` and ``sigmoid`` with
``k = 0.3`` and ``k = 0.7``:
``(1 + e^(-pi/2k)) / (1 - e^(-pi/2k)) * (1 - e^(theta/k - pi/2k)) / (1 + e^(theta/k - pi/2k))``.

Every curve is sampled from :mod:`dcnet_keras.operators` itself
(:func:`~dcnet_keras.operators.magnitude` with ``rho_parts = (1, 1)``,
:func:`~dcnet_keras.operators.angular` of ``c = cos(theta)``, which clips ``c`` to
``[-1 + 1e-6, 1 - 1e-6]`` before ``arccos``), see :func:`operator_curves`.

The PNG is 10 x 4 inches at 100 dpi: 1000 x 400 pixels (:data:`FIGURE_SIZE_PIXELS`).

    python -m dcnet_keras.figures operators --out figure3.png
"""

import math

import numpy as np

from dcnet_keras.figures import new_figure, pixel_size, save_png

FIGURE_SIZE_INCHES = (10.0, 4.0)
FIGURE_DPI = 100
#: ``(width, height)`` of the PNG.
FIGURE_SIZE_PIXELS = pixel_size(FIGURE_SIZE_INCHES, FIGURE_DPI)  # (1000, 400)

#: the left panel's range of ``|x|``.
NORM_RANGE = (0.0, 2.0)
#: ``rho = scale * r2`` of the saturating magnitudes: 1 (``rho_parts = (1, 1)``).
RHO_PARTS = (1.0, 1.0)
ALPHA = 1.0
#: the magnitudes drawn (all of :data:`dcnet_keras.operators.MAGNITUDES`), in order.
MAGNITUDE_CURVES = ("sphere", "ball", "tanh", "linear", "seg", "log", "mix")
#: the angular curves drawn: ``(key, angular name, sigmoid k)``.
#: line styles where curves coincide (ball = sphere past rho; ball, seg = linear below it).
_LINE_STYLES = {"ball": "--", "seg": "-."}
ANGULAR_CURVES = (("linear", "linear", None), ("cos", "cos", None), ("sqcos", "sqcos", None),
                  ("sigmoid_k0.3", "sigmoid", 0.3), ("sigmoid_k0.7", "sigmoid", 0.7))


def magnitude_key(name):
    """The :func:`operator_curves` key of magnitude ``name``: ``"magnitude/<name>"``."""
    return f"magnitude/{name}"


def angular_key(key):
    """The :func:`operator_curves` key of an :data:`ANGULAR_CURVES` entry:
    ``"angular/<key>"`` (``"angular/sigmoid_k0.3"``)."""
    return f"angular/{key}"


def _numpy(tensor):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(tensor), np.float64)


def operator_curves(points=201):
    """The sampled curves of Figure 3: ``{key: (x, y)}``, float64 NumPy arrays of
    ``points`` samples.

    ``"magnitude/<name>"`` (every :data:`MAGNITUDE_CURVES` name): ``x = |x|`` evenly in
    ``[0, 2]``, ``y = operators.magnitude(name, x, rho_parts=(1, 1), alpha=1,
    beta=DEFAULT_BETA.get(name, 0))``.  ``"angular/<key>"`` (``linear``, ``cos``,
    ``sqcos``, ``sigmoid_k0.3``, ``sigmoid_k0.7``): ``x = theta`` evenly in ``[0, pi]``,
    ``y = operators.angular(name, cos(theta), sigmoid_k)``.  The library computes in
    float32 (``theta`` is clipped there to ``arccos(1 - 1e-6)`` ~ 0.0014 at the ends).
    """
    from keras import ops

    from dcnet_keras import operators

    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ValueError(f"points: expected an integer of at least 2, received {points!r}")
    curves = {}
    norms = np.linspace(NORM_RANGE[0], NORM_RANGE[1], int(points))
    v = ops.convert_to_tensor(norms.astype(np.float32))
    for name in MAGNITUDE_CURVES:
        beta = operators.DEFAULT_BETA.get(name, 0.0)
        h = operators.magnitude(name, v, RHO_PARTS, ALPHA, beta)
        curves[magnitude_key(name)] = (norms, _numpy(h))
    thetas = np.linspace(0.0, math.pi, int(points))
    c = ops.convert_to_tensor(np.cos(thetas).astype(np.float32))
    for key, name, k in ANGULAR_CURVES:
        g = operators.angular(name, c) if k is None else operators.angular(name, c, k)
        curves[angular_key(key)] = (thetas, _numpy(g))
    return curves


def _magnitude_label(name):
    from dcnet_keras.operators import DEFAULT_BETA

    beta = DEFAULT_BETA.get(name)
    return name if beta is None else f"{name} (beta {beta:g})"


def _angular_label(key, name, k):
    return name if k is None else f"{name} (k = {k:g})"


def draw(figure, curves):
    """Draw the two panels of Figure 3 from ``curves`` (:func:`operator_curves`) on
    ``figure``."""
    left, right = figure.subplots(1, 2)
    for name in MAGNITUDE_CURVES:
        x, y = curves[magnitude_key(name)]
        left.plot(x, y, label=_magnitude_label(name), linewidth=1.6,
                  linestyle=_LINE_STYLES.get(name, "-"))
    left.set_xlim(*NORM_RANGE)
    left.set_xlabel("|x|")
    left.set_ylabel("h(|x|)")
    left.set_title("magnitude functions (rho = 1, alpha = 1)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="upper left")
    for key, name, k in ANGULAR_CURVES:
        x, y = curves[angular_key(key)]
        right.plot(x, y, label=_angular_label(key, name, k), linewidth=1.6)
    right.set_xlim(0.0, math.pi)
    right.set_xticks([0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4, math.pi])
    right.set_xticklabels(["0", "pi/4", "pi/2", "3pi/4", "pi"])
    right.axhline(0.0, color="0.6", linewidth=0.8)
    right.set_xlabel("theta")
    right.set_ylabel("g(theta)")
    right.set_title("angular functions")
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower left")
    figure.tight_layout()  # the layout inside the fixed canvas; the PNG size is unchanged
    return figure


def operators_figure(out, points=201):
    """Write Figure 3 (:func:`operator_curves` of ``points`` samples) to the PNG ``out``,
    1000 x 400 pixels; returns its absolute path."""
    curves = operator_curves(points)
    figure = new_figure(FIGURE_SIZE_INCHES, FIGURE_DPI)
    draw(figure, curves)
    return save_png(figure, out, FIGURE_DPI)
