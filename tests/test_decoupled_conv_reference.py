"""``DecoupledConv2D`` against the brute-force NumPy reference (``numpy_reference``).

Every magnitude x angular pair, both strides, both paddings, odd and even input
sizes, training (``m`` from the batch) and inference (``m`` from the moving
average); 1x1, even and non-square kernels for a few pairs; weighted operators,
fixed radii, free alpha/beta/k; the moving-average update; the patch-norm
shortcut; gradients (finite, and equal to finite differences of the reference).

Backend-agnostic (keras.ops / NumPy); gradients use ``tf.GradientTape`` on
TensorFlow and ``jax.grad`` on JAX, and are skipped on other backends.
"""

import itertools
import zlib

import keras
import numpy as np
import pytest
from keras import ops

from dcnet_keras import operators
from backend_gradients import layer_gradients
from dcnet_keras.layers import DecoupledConv2D

try:
    import numpy_reference as ref
except ImportError:  # tests/ made a package
    from tests import numpy_reference as ref

MAGNITUDES = ref.MAGNITUDE_NAMES
ANGULARS = ref.ANGULAR_NAMES
PAIRS = list(itertools.product(MAGNITUDES, ANGULARS))
BATCH, CIN, COUT = 2, 3, 4
DECAY = 0.999
# Largest |layer - reference| allowed, relative to the largest |reference|: float32 round-off.
RTOL = 1e-5


def _rng(*key):
    """A generator seeded by the test's parameters (stable across runs and processes)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _input(rng, height, width, cin=CIN):
    """Normal input with a random per-pixel scale, so patch norms spread widely
    around their mean (both sides of rho for ball and seg)."""
    x = rng.normal(size=(BATCH, height, width, cin))
    x *= np.exp(0.6 * rng.normal(size=(BATCH, height, width, 1)))
    return x.astype(np.float32)


def _make_layer(x_shape, kernel, rng, **kwargs):
    """A built layer with the given kernel and, if it has one, a random radius in [0.5, 1.5]."""
    layer = DecoupledConv2D(kernel.shape[-1], kernel.shape[:2], **kwargs)
    layer.build(x_shape)
    layer.kernel.assign(kernel)
    radius = None
    if hasattr(layer, "radius_weight"):
        radius = rng.uniform(0.5, 1.5, size=kernel.shape[-1]).astype(np.float32)
        layer.radius_weight.assign(radius)
    return layer, radius


def _read(variable):
    """A scalar variable's value as a float (any backend)."""
    return float(ops.convert_to_numpy(ops.copy(variable)))


def _kernel(rng, kernel_size, cin=CIN, cout=COUT):
    return rng.normal(size=tuple(kernel_size) + (cin, cout)).astype(np.float32)


def assert_matches(actual, expected, rtol=RTOL, what="output"):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values"
    scale = float(np.max(np.abs(expected)))
    assert scale > 0, f"{what}: the reference is all zeros (degenerate test)"
    err = float(np.max(np.abs(actual - expected)))
    where = np.unravel_index(np.argmax(np.abs(actual - expected)), actual.shape)
    assert err <= rtol * scale, (
        f"{what}: max |layer - reference| = {err:.3g} at {where} "
        f"(layer {actual[where]:.8g}, reference {expected[where]:.8g}), "
        f"allowed {rtol:.1g} x {scale:.3g}")


def run_case(magnitude, angular, *, size=(7, 7), kernel_size=(3, 3), strides=(1, 1),
             padding="same", training=True, key=(), **options):
    """Build a layer with random weights, run it and the reference, compare."""
    rng = _rng(magnitude, angular, size, kernel_size, strides, padding, training, key)
    x = _input(rng, *size)
    kernel = _kernel(rng, kernel_size)
    layer, radius = _make_layer(x.shape, kernel, rng, strides=strides, padding=padding,
                                magnitude=magnitude, angular=angular, **options)
    ref_options = dict(options)
    ref_options.pop("patch_norm", None)  # how the layer sums the patch norm, not what
    if "radius" in ref_options:
        ref_options["fixed_radius"] = ref_options.pop("radius")
    moving = None
    if not training and getattr(layer, "uses_patch_norm_mean", False):
        # A moving value clearly different from the batch mean, so that using the
        # wrong one fails.
        batch_mean = float(np.mean(ref.patch_norms(x, kernel_size, strides, padding)))
        moving = np.float32(batch_mean * rng.uniform(0.6, 0.8))
        layer.moving_patch_norm_mean.shadow.assign(moving)
    expected = ref.decoupled_conv2d(
        x, kernel, strides=strides, padding=padding, magnitude=magnitude, angular=angular,
        radius=radius, training=training, moving_mean=moving, **ref_options)
    actual = ops.convert_to_numpy(layer(x, training=training))
    assert_matches(actual, expected.output)
    return layer, expected


# --- every pair, every basic geometry --------------------------------------------------

GEOMETRIES = [  # (input size, strides, padding), kernel 3x3
    (size, stride, padding)
    for size in (7, 8) for stride in (1, 2) for padding in ("same", "valid")]


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("size,stride,padding", GEOMETRIES,
                         ids=[f"{s}x{s}-s{st}-{p}" for s, st, p in GEOMETRIES])
@pytest.mark.parametrize("magnitude,angular", PAIRS, ids=[f"{m}-{a}" for m, a in PAIRS])
def test_every_pair_matches_reference(magnitude, angular, size, stride, padding, training):
    run_case(magnitude, angular, size=(size, size), strides=(stride, stride), padding=padding,
             training=training)


# --- other kernel shapes for a few pairs ----------------------------------------------

SHAPE_PAIRS = [("tanh", "cos"), ("ball", "cos"), ("linear", "cos"), ("seg", "sigmoid"),
               ("mix", "linear"), ("log", "sqcos"), ("ball", "linear")]
KERNEL_GEOMETRIES = [  # (input size, kernel, strides, padding)
    ((7, 7), (1, 1), (1, 1), "same"),
    ((8, 8), (1, 1), (2, 2), "same"),
    ((7, 7), (1, 1), (2, 2), "valid"),
    ((7, 8), (3, 1), (2, 1), "same"),
    ((8, 7), (3, 1), (1, 2), "valid"),
    ((7, 7), (1, 3), (2, 2), "same"),
    ((8, 8), (2, 2), (1, 1), "same"),   # even kernel: the extra SAME cell goes at the end
    ((7, 7), (2, 2), (2, 2), "same"),
    ((7, 8), (3, 3), (2, 2), "same"),   # non-square input
]


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("size,kernel_size,strides,padding", KERNEL_GEOMETRIES,
                         ids=[f"{s[0]}x{s[1]}-k{k[0]}x{k[1]}-s{st[0]}{st[1]}-{p}"
                              for s, k, st, p in KERNEL_GEOMETRIES])
@pytest.mark.parametrize("magnitude,angular", SHAPE_PAIRS,
                         ids=[f"{m}-{a}" for m, a in SHAPE_PAIRS])
def test_kernel_shapes_match_reference(magnitude, angular, size, kernel_size, strides,
                                       padding, training):
    run_case(magnitude, angular, size=size, kernel_size=kernel_size, strides=strides,
             padding=padding, training=training)


# --- options ----------------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("magnitude,angular", PAIRS, ids=[f"{m}-{a}" for m, a in PAIRS])
def test_free_alpha_beta_k(magnitude, angular, training):
    run_case(magnitude, angular, size=(8, 8), strides=(2, 2), padding="same",
             training=training, alpha=1.7, beta=0.3, sigmoid_k=0.5)


WEIGHTED_ANGULARS = ("cos", "linear", "sqcos")


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("angular", WEIGHTED_ANGULARS)
@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_weighted_operators(magnitude, angular, training):
    run_case(magnitude, angular, size=(7, 7), padding="same", training=training,
             weighted=True, alpha=1.3)


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("weighted", ["linear", "joint", "separate"])
@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_weighted_forms(magnitude, weighted, training):
    """The three weighted forms of Table 1 against the patch loop (with ``cos``; the
    other angulars are covered above for ``separate``)."""
    if weighted == "joint" and magnitude == "sphere":
        pytest.skip("joint x sphere is refused (the unweighted operator)")
    run_case(magnitude, "cos", size=(6, 6), padding="same", training=training,
             weighted=weighted, alpha=1.3)


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("relative_radius", [True, False], ids=["relative", "absolute"])
@pytest.mark.parametrize("angular", ("cos", "sigmoid"))
@pytest.mark.parametrize("magnitude", ref.RADIUS_MAGNITUDES)
def test_fixed_radius(magnitude, angular, relative_radius, training):
    # absolute: rho = R must sit inside the range of patch norms (about 2 .. 20 here)
    radius = 1.1 if relative_radius else 6.5
    layer, expected = run_case(magnitude, angular, size=(7, 7), strides=(1, 1),
                               padding="same", training=training, radius=radius,
                               relative_radius=relative_radius)
    assert not hasattr(layer, "radius_weight")
    assert hasattr(layer, "moving_patch_norm_mean") == relative_radius
    below = expected.patch_norm[..., None] < expected.rho  # both sides of rho are exercised
    assert below.any() and (~below).any()


ONES_FILTER_GEOMETRIES = [((7, 7), (3, 3), (1, 1), "same"), ((8, 8), (3, 3), (2, 2), "valid"),
                          ((8, 8), (1, 1), (2, 2), "same"), ((7, 8), (3, 1), (2, 1), "same")]


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("size,kernel_size,strides,padding", ONES_FILTER_GEOMETRIES,
                         ids=[f"{s[0]}x{s[1]}-k{k[0]}x{k[1]}-s{st[0]}{st[1]}-{p}"
                              for s, k, st, p in ONES_FILTER_GEOMETRIES])
@pytest.mark.parametrize("magnitude,angular", [("tanh", "cos"), ("ball", "cos"),
                                               ("seg", "cos"), ("linear", "sqcos"),
                                               ("mix", "sigmoid")])
def test_ones_filter_patch_norm_option(magnitude, angular, size, kernel_size, strides,
                                       padding, training):
    """``patch_norm="ones_filter"`` (the original's [k, k, Cin, 1] ones conv) is the same
    function."""
    run_case(magnitude, angular, size=size, kernel_size=kernel_size, strides=strides,
             padding=padding, training=training, patch_norm="ones_filter")


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("magnitude,angular", [("ball", "cos"), ("tanh", "cos"),
                                               ("seg", "linear")])
def test_mean_epsilon(magnitude, angular, training):
    run_case(magnitude, angular, training=training, mean_epsilon=0.25)


@pytest.mark.parametrize("magnitude,angular", [("ball", "cos"), ("seg", "cos"),
                                               ("ball", "sigmoid"), ("seg", "sqcos")])
def test_data_exercises_both_sides_of_rho(magnitude, angular):
    """Guards the power of the tests above: patch norms fall on both sides of rho."""
    _, expected = run_case(magnitude, angular, size=(7, 7), padding="same")
    xn = expected.patch_norm[..., None]
    below = xn < expected.rho
    assert below.any() and (~below).any()


# --- moving average of the mean patch norm ----------------------------------------------

@pytest.mark.parametrize("decay", [0.999, 0.9])
@pytest.mark.parametrize("magnitude", ref.RADIUS_MAGNITUDES)
def test_moving_mean_update(magnitude, decay):
    rng = _rng("moving", magnitude, decay)
    x1 = _input(rng, 8, 8)
    x2 = 2.0 * _input(rng, 8, 8)
    kernel = _kernel(rng, (3, 3))
    layer, _ = _make_layer(x1.shape, kernel, rng, magnitude=magnitude, angular="cos",
                           decay=decay)
    shadow = layer.moving_patch_norm_mean.shadow
    assert _read(shadow) == 0.0  # starts at 0, not at 1 or the batch value
    rate = float(np.float32(1.0) - np.float32(decay))  # TF1 forms 1 - decay in float32
    m1 = float(np.mean(ref.patch_norms(x1, 3, 1, "same")))
    m2 = float(np.mean(ref.patch_norms(x2, 3, 1, "same")))

    layer(x1, training=True)
    s1 = _read(shadow)
    np.testing.assert_allclose(s1, rate * m1, rtol=2e-6)
    if decay == 0.999:
        # float32 1 - 0.999 = 9.99987e-4 differs from 0.001 by 1.3e-5 relative: the
        # tolerance above tells the two apart
        assert abs(s1 - 0.001 * m1) > 3 * 2e-6 * s1

    layer(x1, training=False)  # inference leaves the average alone
    assert _read(shadow) == s1

    layer(x2, training=True)  # no zero-debias: s2 = s1 - (s1 - m2) * (1 - d)
    np.testing.assert_allclose(_read(shadow), s1 - (s1 - m2) * rate,
                               rtol=2e-6)


def test_no_moving_mean_without_radius():
    rng = _rng("no-moving")
    x = _input(rng, 7, 7)
    for magnitude in ("sphere", "linear", "log", "mix"):
        layer, _ = _make_layer(x.shape, _kernel(rng, (3, 3)), rng, magnitude=magnitude,
                               angular="cos")
        assert not hasattr(layer, "moving_patch_norm_mean")
        assert not hasattr(layer, "radius_weight")
        # inference before any training step is well defined for these
        train = ops.convert_to_numpy(layer(x, training=True))
        infer = ops.convert_to_numpy(layer(x, training=False))
        np.testing.assert_array_equal(train, infer)


# --- patch norm shortcut ----------------------------------------------------------------

PATCH_GEOMETRIES = [
    ((7, 7), (3, 3), (1, 1), "same"), ((8, 8), (3, 3), (2, 2), "same"),
    ((7, 7), (3, 3), (2, 2), "valid"), ((8, 8), (3, 3), (1, 1), "valid"),
    ((7, 7), (1, 1), (1, 1), "same"), ((8, 8), (1, 1), (2, 2), "same"),
    ((7, 7), (1, 1), (2, 2), "valid"), ((8, 7), (1, 1), (3, 2), "valid"),
    ((7, 8), (3, 1), (2, 1), "same"), ((8, 7), (1, 3), (1, 2), "valid"),
    ((8, 8), (2, 2), (1, 1), "same"), ((7, 7), (2, 2), (2, 2), "same"),
    ((9, 9), (5, 5), (2, 2), "same"), ((8, 8), (4, 4), (3, 3), "same"),
]


@pytest.mark.parametrize("size,kernel_size,strides,padding", PATCH_GEOMETRIES,
                         ids=[f"{s[0]}x{s[1]}-k{k[0]}x{k[1]}-s{st[0]}{st[1]}-{p}"
                              for s, k, st, p in PATCH_GEOMETRIES])
def test_patch_norm_shortcut(size, kernel_size, strides, padding):
    rng = _rng("patch-norm", size, kernel_size, strides, padding)
    x = _input(rng, *size, cin=5)
    expected = ref.patch_norms(x, kernel_size, strides, padding)
    fast = ops.convert_to_numpy(operators.patch_norm(x, kernel_size, strides, padding))
    ones = ops.convert_to_numpy(
        operators.patch_norm_ones_filter(x, kernel_size, strides, padding))
    assert_matches(fast, expected, what="patch_norm")
    assert_matches(ones, expected, what="patch_norm_ones_filter")
    np.testing.assert_allclose(fast, ones, rtol=2e-6, atol=0)
    ones_option = ops.convert_to_numpy(
        operators.patch_norm(x, kernel_size, strides, padding, "ones_filter"))
    assert_matches(ones_option, expected, what='patch_norm(..., "ones_filter")')


def test_filter_norm_and_normalize():
    rng = _rng("filter-norm")
    kernel = _kernel(rng, (3, 2), cin=5, cout=6)
    assert_matches(ops.convert_to_numpy(operators.filter_norm(kernel)), ref.filter_norms(kernel),
                   what="filter_norm")
    w_hat = ops.convert_to_numpy(operators.normalize_filter(kernel))
    assert_matches(w_hat, kernel / ref.filter_norms(kernel), what="normalize_filter")


# --- gradients --------------------------------------------------------------------------

GRAD_GEOMETRIES = [((7, 7), (3, 3), (1, 1), "same"), ((8, 8), (3, 3), (2, 2), "valid")]


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("geometry", [0, 1], ids=["7x7-s1-same", "8x8-s2-valid"])
@pytest.mark.parametrize("magnitude,angular", PAIRS, ids=[f"{m}-{a}" for m, a in PAIRS])
def test_gradients_match_reference(magnitude, angular, geometry, training):
    """Directional derivatives of the layer equal central differences of the float64
    reference (in training mode m depends on x, and the gradient must follow it)."""
    size, kernel_size, strides, padding = GRAD_GEOMETRIES[geometry]
    rng = _rng("grad", magnitude, angular, geometry, training)
    x = _input(rng, *size)
    kernel = _kernel(rng, kernel_size)
    layer, radius = _make_layer(x.shape, kernel, rng, strides=strides, padding=padding,
                                magnitude=magnitude, angular=angular)
    moving = None
    if not training and layer.uses_patch_norm_mean:
        moving = np.float32(0.7 * np.mean(ref.patch_norms(x, kernel_size, strides, padding)))
        layer.moving_patch_norm_mean.shadow.assign(moving)
    out_shape = ref.decoupled_conv2d(x, kernel, strides=strides, padding=padding,
                                     magnitude=magnitude, angular=angular, radius=radius,
                                     training=training, moving_mean=moving).output.shape
    cotangent = rng.normal(size=out_shape).astype(np.float32)

    _, grads = layer_gradients(layer, x, training, cotangent)
    for g in grads:
        assert g is not None and np.all(np.isfinite(g))
    names = ["x"] + [v.name for v in layer.trainable_variables]
    values = {"x": x.astype(np.float64), "kernel": kernel.astype(np.float64)}
    if radius is not None:
        values["radius"] = radius.astype(np.float64)
    assert set(names) == set(values)

    def objective(point):
        out = ref.decoupled_conv2d(point["x"], point["kernel"], strides=strides,
                                   padding=padding, magnitude=magnitude, angular=angular,
                                   radius=point.get("radius"), training=training,
                                   moving_mean=moving).output
        return float(np.sum(out * cotangent))

    step = 1e-6
    for name, grad in zip(names, grads):
        grad = grad.astype(np.float64)
        norm = float(np.linalg.norm(grad))
        random_dir = rng.normal(size=grad.shape)
        directions = [random_dir / np.linalg.norm(random_dir)]
        if norm > 0:
            directions.append(grad / norm)
        for d in directions:
            plus = dict(values, **{name: values[name] + step * d})
            minus = dict(values, **{name: values[name] - step * d})
            numeric = (objective(plus) - objective(minus)) / (2 * step)
            analytic = float(np.sum(grad * d))
            # float32 gradient against a float64 difference quotient; a missing term
            # (e.g. a stop-gradient on m) is off by percents.
            tol = 2e-4 * max(norm, 1e-3)
            assert abs(analytic - numeric) <= tol, (
                f"d/d{name}: layer {analytic:.7g}, finite difference {numeric:.7g}")
