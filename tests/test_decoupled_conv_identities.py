"""Exact identities of ``DecoupledConv2D``, edge inputs and argument checks.

* A patch parallel to its filter (theta = 0), anti-parallel (pi), orthogonal
  (pi/2) and at 60 / 120 degrees gives ``h(|x|) * g(theta)`` with the known
  values of every angular function (``g(0) = 1``, ``g(pi) = -1``,
  ``g(pi/2) = 0``, ``g(pi - t) = -g(t)``) and closed-form magnitudes (one output
  position per example and equal patch norms in the batch, so ``m = |x|``).
* All-zero, constant and huge inputs give finite outputs and gradients.
* Bad arguments raise ``ValueError`` naming the argument and the value.

Backend-agnostic (keras.ops / NumPy); gradients use ``tf.GradientTape`` on
TensorFlow and ``jax.grad`` on JAX, and are skipped on other backends.
"""

import itertools
import math
import zlib

import keras
import numpy as np
import pytest
from keras import ops

from backend_gradients import layer_gradients
from dcnet_keras.layers import DecoupledConv2D

MAGNITUDES = ("sphere", "ball", "tanh", "linear", "seg", "log", "mix")
ANGULARS = ("linear", "cos", "sigmoid", "sqcos")
PAIRS = list(itertools.product(MAGNITUDES, ANGULARS))
PAIR_IDS = [f"{m}-{a}" for m, a in PAIRS]
RADIUS_MAGNITUDES = ("ball", "tanh", "seg")
EPS = 1e-4

K, CIN, COUT = 3, 3, 4
ALPHA, BETA, SIGMOID_K = 1.5, 0.25, 0.3
# Radii on both sides of 1, so that rho = r2 * m falls below and above |x| = m.
RADII = np.array([0.7, 1.3, 0.9, 1.2], dtype=np.float32)
PATCH_NORM = 20.0  # |x| >> sqrt(1e-4): the eps terms move c by ~1e-7


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _read(variable):
    return float(ops.convert_to_numpy(ops.copy(variable)))


def _sigmoid_g(theta, k=SIGMOID_K):
    big_k = (1 + math.exp(-math.pi / (2 * k))) / (1 - math.exp(-math.pi / (2 * k)))
    z = math.exp(theta / k - math.pi / (2 * k))
    return big_k * (1 - z) / (1 + z)


# g at c = 1, 0.5, 0, -0.5, -1 (theta = 0, pi/3, pi/2, 2pi/3, pi), from the definitions.
COSINES = (1.0, 0.5, 0.0, -0.5, -1.0)
EXPECTED_G = {
    "linear": (1.0, 1.0 / 3.0, 0.0, -1.0 / 3.0, -1.0),
    "cos": (1.0, 0.5, 0.0, -0.5, -1.0),
    "sqcos": (1.0, 0.25, 0.0, -0.25, -1.0),
    "sigmoid": (1.0, _sigmoid_g(math.pi / 3), 0.0, -_sigmoid_g(math.pi / 3), -1.0),
}


def test_sigmoid_endpoints_are_exact():
    # The table's sigmoid values are right: its scale makes g(0) = 1, g(pi) = -1.
    assert _sigmoid_g(0.0) == pytest.approx(1.0, abs=1e-12)
    assert _sigmoid_g(math.pi) == pytest.approx(-1.0, abs=1e-12)
    assert _sigmoid_g(math.pi / 2) == pytest.approx(0.0, abs=1e-12)


def _magnitude_closed_form(name, xn, r2, alpha=ALPHA, beta=BETA):
    """``h(xn)`` with ``rho = r2 * xn`` (m = xn), by hand."""
    if name == "sphere":
        return alpha
    if name == "ball":  # min(xn, r2 xn) / (r2 xn)
        return alpha * min(1.0, 1.0 / r2)
    if name == "tanh":
        return alpha * math.tanh(1.0 / r2)
    if name == "linear":
        return alpha * xn
    if name == "seg":  # below rho iff r2 > 1
        return alpha * xn if r2 > 1.0 else beta * xn + (alpha - beta) * r2 * xn
    if name == "log":
        return alpha * math.log1p(xn)
    if name == "mix":
        return alpha * xn + beta * math.log1p(xn)
    raise AssertionError(name)


def _unit_filters(rng, norms):
    """Kernel ``[K, K, CIN, COUT]`` with the given per-channel norms, and its unit columns."""
    kernel = rng.normal(size=(K, K, CIN, COUT))
    unit = kernel / np.sqrt(np.sum(kernel ** 2, axis=(0, 1, 2)))
    return (unit * np.asarray(norms)).astype(np.float32), unit


def _inputs_at_cosine(rng, unit, cosine, norm):
    """Batch ``[COUT, K, K, CIN]``: example ``o`` has norm ``norm`` and cosine ``cosine``
    with filter ``o``.  For c = +-1 it is the filter itself times a scale."""
    xs = []
    for o in range(COUT):
        w = unit[..., o]
        v = rng.normal(size=w.shape)
        v -= np.sum(v * w) * w
        v /= np.linalg.norm(v)
        xs.append(norm * (cosine * w + math.sqrt(max(0.0, 1.0 - cosine ** 2)) * v))
    return np.stack(xs).astype(np.float32)


def _layer(magnitude, angular, kernel, **kwargs):
    layer = DecoupledConv2D(COUT, K, padding="valid", magnitude=magnitude, angular=angular,
                            alpha=ALPHA, beta=BETA, sigmoid_k=SIGMOID_K, **kwargs)
    layer.build((COUT, K, K, CIN))
    layer.kernel.assign(kernel)
    if hasattr(layer, "radius_weight"):
        layer.radius_weight.assign(RADII)
    return layer


# Tolerance relative to |h|.  The linear angular function has slope 2/pi in theta, and
# theta = arccos(c) is steep at c = +-1: the library clips c to 1 - 1e-6 before arccos,
# i.e. theta >= sqrt(2e-6) = 1.4e-3, so g(0) = 1 - 9e-4 there.  The other three are flat
# at theta = 0 and pi (errors ~1e-5 and below).
def _tolerance(angular):
    return 1.2e-3 if angular == "linear" else 1e-3


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("magnitude,angular", PAIRS, ids=PAIR_IDS)
def test_angular_and_magnitude_identities(magnitude, angular, training):
    rng = _rng("identity", magnitude, angular, training)
    kernel, unit = _unit_filters(rng, [30.0, 45.0, 15.0, 60.0])
    layer = _layer(magnitude, angular, kernel)
    r2 = RADII.astype(np.float64) ** 2 + EPS
    for cosine, g in zip(COSINES, EXPECTED_G[angular]):
        # c = 1: the filter times a scale (|x| = 20); c = -1: -2 x that.
        norm = 2 * PATCH_NORM if cosine == -1.0 else PATCH_NORM
        x = _inputs_at_cosine(rng, unit, cosine, norm)
        xn = math.sqrt(norm ** 2 + EPS)
        if not training and layer.uses_patch_norm_mean:
            layer.moving_patch_norm_mean.shadow.assign(np.float32(xn))
        out = ops.convert_to_numpy(layer(x, training=training))
        assert out.shape == (COUT, 1, 1, COUT)
        for o in range(COUT):
            h = _magnitude_closed_form(magnitude, xn, r2[o])
            got = float(out[o, 0, 0, o])
            assert abs(got - h * g) <= _tolerance(angular) * abs(h), (
                f"c={cosine}, channel {o}: output {got:.7g}, expected h*g = {h:.7g} * {g:.7g}")


@pytest.mark.parametrize("angular", ["cos", "linear"])
@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_weighted_identities(magnitude, angular):
    """Weighted: ``h(|x|) * h(|w|) / alpha * g`` (``|w|`` for sphere), same rho."""
    rng = _rng("weighted", magnitude, angular)
    wnorms = [30.0, 45.0, 15.0, 60.0]
    kernel, unit = _unit_filters(rng, wnorms)
    layer = _layer(magnitude, angular, kernel, weighted=True)
    r2 = RADII.astype(np.float64) ** 2 + EPS
    for cosine, g in ((1.0, 1.0), (-1.0, -1.0)):
        norm = 2 * PATCH_NORM if cosine == -1.0 else PATCH_NORM
        x = _inputs_at_cosine(rng, unit, cosine, norm)
        xn = math.sqrt(norm ** 2 + EPS)
        out = ops.convert_to_numpy(layer(x, training=True))
        for o in range(COUT):
            wn = math.sqrt(wnorms[o] ** 2 + EPS)
            h = _magnitude_closed_form(magnitude, xn, r2[o])
            if magnitude == "sphere":
                hw = wn
            elif magnitude == "ball":
                hw = min(wn, r2[o] * xn) / (r2[o] * xn)
            elif magnitude == "tanh":
                hw = math.tanh(wn / (r2[o] * xn))
            elif magnitude == "seg":
                rho = r2[o] * xn
                hw = (ALPHA * wn if wn < rho else BETA * wn + (ALPHA - BETA) * rho) / ALPHA
            else:  # linear, log, mix do not use rho
                hw = _magnitude_closed_form(magnitude, wn, 1.0) / ALPHA
            got = float(out[o, 0, 0, o])
            assert abs(got - h * hw * g) <= _tolerance(angular) * abs(h * hw), (
                f"c={cosine}, channel {o}: output {got:.7g}, expected {h * hw * g:.7g}")


def test_fixed_absolute_radius_identity():
    """``radius=R, relative_radius=False``: rho = R, independent of the batch."""
    rng = _rng("absolute")
    kernel, unit = _unit_filters(rng, [30.0, 45.0, 15.0, 60.0])
    layer = DecoupledConv2D(COUT, K, padding="valid", magnitude="ball", angular="cos",
                            radius=25.0, relative_radius=False)
    layer.build((COUT, K, K, CIN))
    layer.kernel.assign(kernel)
    for norm in (10.0, 20.0, 40.0, 80.0):
        out = ops.convert_to_numpy(layer(_inputs_at_cosine(rng, unit, 1.0, norm),
                                         training=True))
        expected = min(norm, 25.0) / 25.0
        np.testing.assert_allclose(np.diagonal(out[:, 0, 0, :]), expected, rtol=1e-3)


# --- edge inputs: finite outputs and gradients -------------------------------------------

def _edge_input(kind, rng):
    shape = (2, 7, 7, CIN)
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "constant":
        return np.full(shape, 0.75, np.float32)
    if kind == "huge":
        return (1e6 * rng.normal(size=shape)).astype(np.float32)
    raise AssertionError(kind)


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("kind", ["zeros", "constant", "huge"])
@pytest.mark.parametrize("magnitude,angular", PAIRS, ids=PAIR_IDS)
def test_edge_inputs_finite(magnitude, angular, kind, training):
    rng = _rng("edge", magnitude, angular, kind, training)
    x = _edge_input(kind, rng)
    layer = DecoupledConv2D(COUT, K, padding="same", magnitude=magnitude, angular=angular)
    layer.build(x.shape)
    layer.kernel.assign(rng.normal(size=(K, K, CIN, COUT)).astype(np.float32))
    if not training and layer.uses_patch_norm_mean:
        layer(x, training=True)  # one training step: a moving mean of this input's scale
        assert _read(layer.moving_patch_norm_mean.shadow) > 0
    out, grads = layer_gradients(layer, x, training)
    assert out.shape == (2, 7, 7, COUT)
    assert np.all(np.isfinite(out)), f"non-finite output for {kind} input"
    names = ["input"] + [v.name for v in layer.trainable_variables]
    for name, g in zip(names, grads):
        assert g is not None, f"no gradient for {name}"
        assert np.all(np.isfinite(g)), f"non-finite gradient for {name} with {kind} input"
    if kind == "zeros":
        # u = 0 everywhere: c = 0, theta = pi/2 and g = 0 for every angular function.
        np.testing.assert_allclose(out, 0.0, atol=1e-6)


# --- argument checks ---------------------------------------------------------------------

BAD_ARGUMENTS = [
    ("magnitude", "cosine"), ("magnitude", None),
    ("angular", "tan"), ("angular", "COS"),
    ("filters", 0), ("filters", -3), ("filters", 2.5),
    ("kernel_size", 0), ("kernel_size", (3, 0)), ("strides", -1),
    ("padding", "full"),
    ("alpha", 0.0), ("alpha", -1.0), ("beta", -0.5),
    ("radius", "fixed"), ("radius", -1.0),
    ("sigmoid_k", 0.0), ("decay", 1.0), ("patch_norm", "avg_pool"),
]


@pytest.mark.parametrize("argument,value", BAD_ARGUMENTS,
                         ids=[f"{a}={v!r}" for a, v in BAD_ARGUMENTS])
def test_bad_argument_raises(argument, value):
    kwargs = {"filters": 4, "kernel_size": 3, argument: value}
    with pytest.raises(ValueError) as info:
        DecoupledConv2D(**kwargs)
    message = str(info.value)
    assert argument in message, message
    assert repr(value) in message or str(value) in message, message


def test_three_dimensional_input_raises():
    layer = DecoupledConv2D(4, 3)
    with pytest.raises(ValueError) as info:
        layer(np.zeros((2, 7, CIN), np.float32))
    message = str(info.value)
    assert "input" in message and "4" in message, message
    assert "(2, 7, 3)" in message, message


def test_three_dimensional_input_on_built_layer_raises():
    layer = DecoupledConv2D(4, 3)
    layer.build((2, 7, 7, CIN))
    with pytest.raises(ValueError) as info:
        layer(np.zeros((2, 7, CIN), np.float32))
    message = str(info.value)
    assert "input" in message.lower() and "(2, 7, 3)" in message, message


def test_wrong_channel_count_raises():
    layer = DecoupledConv2D(4, 3)
    layer(np.zeros((2, 7, 7, CIN), np.float32))  # built for 3 channels
    with pytest.raises(ValueError) as info:
        layer(np.zeros((2, 7, 7, 5), np.float32))
    message = str(info.value)
    assert "input" in message.lower(), message
    assert "3" in message and "(2, 7, 7, 5)" in message, message


def test_unknown_channel_count_raises():
    layer = DecoupledConv2D(4, 3)
    with pytest.raises(ValueError) as info:
        layer.build((2, 7, 7, None))
    assert "channel" in str(info.value), str(info.value)


@pytest.mark.parametrize("magnitude", ["ball", "tanh", "seg"])
@pytest.mark.parametrize("angular", ["linear", "cos", "sigmoid", "sqcos"])
def test_inference_before_any_training_step_is_finite(magnitude, angular):
    """The moving mean patch norm starts at 0 (rho = 0): outputs must stay finite."""
    x = np.random.default_rng(5).normal(size=(2, 7, 7, 3)).astype("float32")
    layer = DecoupledConv2D(4, 3, magnitude=magnitude, angular=angular)
    y = keras.ops.convert_to_numpy(layer(x, training=False))
    assert np.all(np.isfinite(y))
