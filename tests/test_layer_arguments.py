"""Layer arguments that would make the function non-finite raise one ``ValueError``
naming the argument and the value; the extreme values still allowed give finite
outputs and gradients, and (for ``sigmoid_k``) the right numbers.

References are NumPy float64 from the definitions, never the code under test:
``g(theta) = K (1 - z) / (1 + z)`` with ``z = exp((theta - pi/2) / k)`` and
``K = (1 + e^(-pi/2k)) / (1 - e^(-pi/2k))``, evaluated as ``-K tanh((theta - pi/2) / 2k)``
(the same number, with no overflow).
"""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from backend_gradients import layer_gradients  # noqa: E402
from dcnet_keras.layers import DecoupledConv2D, PlainConv2D, TF1BatchNormalization  # noqa: E402
from dcnet_keras.regularizers import FilterOrthogonality, TF1WeightDecay  # noqa: E402

INF, NAN = math.inf, math.nan
F32_MAX = float(np.finfo(np.float32).max)
#: pi / (2 ln(float32 max)), by hand: exp(pi/(2k)) is the largest value the sigmoid's
#: exponential could take (theta -> pi); it must not exceed the float32 maximum.
K_MIN = math.pi / (2.0 * math.log(F32_MAX))
ARCCOS_CLIP = 1e-6  # the documented clip of the cosine before arccos
K, CIN, COUT = 3, 2, 4


def _raises_naming(make, argument, value):
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{argument}:"), message
    assert repr(value) in message, message
    return message


# --- bad values -----------------------------------------------------------------------

DECOUPLED_BAD = [
    ("alpha", INF), ("alpha", NAN), ("alpha", -INF), ("alpha", 1e39),
    ("beta", INF), ("beta", NAN),
    ("radius", INF), ("radius", NAN), ("radius", 1e39), ("radius", 1e-50),
    ("orthogonality", INF), ("orthogonality", NAN),
    ("decay", NAN), ("decay", INF),
    ("mean_epsilon", INF), ("mean_epsilon", NAN),
    ("sigmoid_k", INF), ("sigmoid_k", NAN),
]


@pytest.mark.parametrize("argument,value", DECOUPLED_BAD,
                         ids=[f"{a}={v!r}" for a, v in DECOUPLED_BAD])
@pytest.mark.parametrize("magnitude,angular", [("tanh", "cos"), ("seg", "sigmoid")])
def test_decoupled_conv_refuses_non_finite(argument, value, magnitude, angular):
    _raises_naming(lambda: DecoupledConv2D(COUT, K, magnitude=magnitude, angular=angular,
                                           **{argument: value}), argument, value)


SIGMOID_K_BAD = [0.017, 1e-3, K_MIN * (1 - 1e-9), 1e17, 1e300]


@pytest.mark.parametrize("value", SIGMOID_K_BAD, ids=[repr(v) for v in SIGMOID_K_BAD])
def test_sigmoid_k_out_of_the_finite_range(value):
    message = _raises_naming(lambda: DecoupledConv2D(COUT, K, angular="sigmoid", sigmoid_k=value),
                             "sigmoid_k", value)
    if value < 1:
        assert f"{K_MIN:.7g}" in message, message  # the bound is named


@pytest.mark.parametrize("value", ["eq15", "Joint", 1, 0.5])
def test_weighted_refuses_an_unknown_form(value):
    message = _raises_naming(lambda: DecoupledConv2D(COUT, K, weighted=value), "weighted",
                             value)
    assert "'joint'" in message and "'separate'" in message, message


def test_weighted_joint_with_sphere_is_refused():
    _raises_naming(lambda: DecoupledConv2D(COUT, K, magnitude="sphere", weighted="joint"),
                   "weighted", "joint")


@pytest.mark.parametrize("value,stored", [(True, "separate"), (False, False), (None, False),
                                          ("linear", "linear"), ("joint", "joint")])
def test_weighted_true_means_separate_and_round_trips(value, stored):
    layer = DecoupledConv2D(COUT, K, weighted=value)
    assert layer.weighted == stored
    assert DecoupledConv2D.from_config(layer.get_config()).weighted == stored
    assert layer.projectable == (stored is False)


BN_BAD = [("epsilon", INF), ("epsilon", NAN), ("epsilon", 0.0), ("epsilon", 1e-50),
          ("decay", NAN), ("decay", INF), ("weight_decay", INF), ("weight_decay", NAN)]


@pytest.mark.parametrize("argument,value", BN_BAD, ids=[f"{a}={v!r}" for a, v in BN_BAD])
def test_batch_norm_refuses_non_finite(argument, value):
    _raises_naming(lambda: TF1BatchNormalization(**{argument: value}), argument, value)


@pytest.mark.parametrize("value", [INF, NAN, 1e39])
def test_plain_conv_and_regularizers_refuse_non_finite(value):
    _raises_naming(lambda: PlainConv2D(COUT, K, weight_decay=value), "weight_decay", value)
    _raises_naming(lambda: TF1WeightDecay(value), "wd", value)
    _raises_naming(lambda: FilterOrthogonality(value), "strength", value)


def test_a_tampered_config_is_refused_on_load():
    """Keras wraps the layer's ValueError in a TypeError that quotes it."""
    config = DecoupledConv2D(COUT, K).get_config()
    config["alpha"] = INF
    with pytest.raises((ValueError, TypeError), match=r"alpha: expected a finite .*received inf"):
        DecoupledConv2D.from_config(config)


# --- the extremes still allowed ---------------------------------------------------------


def _kernel_and_patches(seed):
    """A kernel ``[K, K, CIN, COUT]`` and patches ``[B, K, K, CIN]`` whose cosines with
    filter 0 include +-1 (the patch is the filter itself) and 0, plus random ones."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(K, K, CIN, COUT))
    w0 = kernel[..., 0]
    ortho = rng.normal(size=w0.shape)
    ortho -= np.sum(ortho * w0) / np.sum(w0 * w0) * w0
    patches = [3.0 * w0, -3.0 * w0, 2.0 * ortho / np.linalg.norm(ortho)]
    patches += list(rng.normal(size=(13, K, K, CIN)))
    return kernel.astype(np.float32), np.stack(patches).astype(np.float32)


def _sigmoid_reference(kernel, patches, k):
    """float64 ``g(theta)`` of every (patch, filter), from the definitions; ``[B, 1, 1, COUT]``."""
    kernel, patches = kernel.astype(np.float64), patches.astype(np.float64)
    w_hat = kernel / np.sqrt(np.sum(kernel ** 2, axis=(0, 1, 2)) + 1e-4)
    u = np.einsum("bhwc,hwco->bo", patches, w_hat)
    xn = np.sqrt(np.sum(patches ** 2, axis=(1, 2, 3)) + 1e-4)[:, None]
    theta = np.arccos(np.clip(u / xn, -1 + ARCCOS_CLIP, 1 - ARCCOS_CLIP))
    e = math.exp(-math.pi / (2 * k))
    scale = (1 + e) / (1 - e)
    return (-scale * np.tanh((theta - math.pi / 2) / (2 * k)))[:, None, None, :]


def test_the_smallest_sigmoid_k_is_the_overflow_bound():
    """By hand: at K_MIN the largest exponent the layer can meet, (theta_max - pi/2) / k,
    stays below ln(float32 max); 1% below K_MIN it is above."""
    theta_max = math.acos(-1 + ARCCOS_CLIP)
    ln_max = math.log(F32_MAX)
    assert (theta_max - math.pi / 2) / K_MIN < ln_max
    assert (theta_max - math.pi / 2) / (0.99 * K_MIN) > ln_max
    DecoupledConv2D(COUT, K, angular="sigmoid", sigmoid_k=K_MIN)  # allowed


def _sigmoid_layer_outputs(magnitude, k, kernel, patches, training):
    """``(output, gradients)`` of a VALID ``magnitude`` x ``sigmoid`` layer with ``kernel``."""
    layer = DecoupledConv2D(COUT, K, padding="valid", magnitude=magnitude, angular="sigmoid",
                            sigmoid_k=k)
    layer.build(patches.shape)
    layer.kernel.assign(kernel)
    return layer_gradients(layer, patches, training)


@pytest.mark.parametrize("k", [K_MIN, 0.3, 1e3], ids=["smallest", "default", "large"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
def test_sigmoid_at_allowed_k_is_finite_and_right(k, training):
    """``sphere`` x ``sigmoid`` (h = 1) is ``g(theta)`` itself: finite output and
    gradients, equal to the float64 reference."""
    kernel, patches = _kernel_and_patches(1)
    out, grads = _sigmoid_layer_outputs("sphere", k, kernel, patches, training)
    assert np.isfinite(out).all()
    assert all(np.isfinite(g).all() for g in grads)
    expected = _sigmoid_reference(kernel, patches, k)
    # Measured: 5e-6 at the smallest k (g is steep there, K/(2k) = 28 at theta = pi/2),
    # 1e-6 at 0.3, 5e-5 at 1e3 (K ~ 4k/pi amplifies the float32 rounding of 1 - z).
    atol = 1e-4 if k < 100 else 5e-4
    np.testing.assert_allclose(out, expected, rtol=0, atol=atol)
    # The inputs reach both ends, theta ~ 0 and ~ pi, where the exponent is extreme
    # (g ~ +-1; at large k g is nearly 1 - 2 theta / pi with theta >= 1.4e-3 by the clip).
    assert expected[0, 0, 0, 0] > 0.99 and expected[1, 0, 0, 0] < -0.99


def test_sigmoid_at_smallest_k_with_a_saturating_magnitude_trains():
    kernel, patches = _kernel_and_patches(2)
    out, grads = _sigmoid_layer_outputs("tanh", K_MIN, kernel, patches, True)
    assert np.isfinite(out).all() and all(np.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("options", [
    {"magnitude": "tanh", "alpha": F32_MAX},
    {"magnitude": "tanh", "radius": F32_MAX},
    {"magnitude": "ball", "radius": F32_MAX},
    {"magnitude": "tanh", "radius": F32_MAX, "relative_radius": False},
    {"magnitude": "tanh", "mean_epsilon": F32_MAX},
    {"magnitude": "seg", "beta": 0.0},
], ids=lambda o: ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in o.items()))
def test_largest_allowed_values_give_a_finite_output(options):
    """The float32 maximum is allowed and, where the magnitude saturates, harmless."""
    kernel, patches = _kernel_and_patches(3)
    layer = DecoupledConv2D(COUT, K, padding="valid", **options)
    layer.build(patches.shape)
    layer.kernel.assign(kernel)
    for training in (True, False):
        out = keras.ops.convert_to_numpy(layer(patches, training=training))
        assert np.isfinite(out).all(), (options, training)


def test_batch_norm_with_the_largest_epsilon_is_finite():
    layer = TF1BatchNormalization(epsilon=F32_MAX, weight_decay=F32_MAX)
    x = np.random.default_rng(4).normal(size=(4, 3, 3, 2)).astype(np.float32)
    for training in (True, False):
        assert np.isfinite(keras.ops.convert_to_numpy(layer(x, training=training))).all()
