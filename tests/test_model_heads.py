"""``include_top`` / ``pooling`` / ``input_shape`` of the three networks (the
``keras.applications`` arguments) and float32 logits under mixed precision.

Shapes are derived by hand from the architectures: every downsampling is SAME, so a
side ``s`` becomes ``ceil(s / 2)`` at each stride 2.  CIFAR ResNet-32: two stride-2
stages, feature map ``[N, ceil(H/4), ceil(W/4), widths[2]]``, top = ``avg_pool`` (8x8
VALID), ``score``, ``logits``.  CNN-9: three 2x2 stride-2 pools, ``[N, ceil(H/8),
ceil(W/8), widths[2]]``, top = ``fc6``, ``score``, ``logits``.  ImageNet ResNet-18:
root, max pool and conv2-4 at stride 2, ``[N, ceil(H/32), ceil(W/32), widths[3]]``, top =
``avg_pool`` (7x7 VALID), ``score``, ``logits``.
"""

import math

import numpy as np
import pytest

import keras

from dcnet_keras.models import build_model, get_network, resolve
from dcnet_keras.models.registry import Network, head_arguments

CLASSES = 5
#: network -> (tiny size options, default input side, total stride, feature channels)
NETWORKS = {
    "cifar_resnet32": (dict(widths=(4, 8, 8), units_per_stage=1), 32, 4, 8),
    "cnn9": (dict(widths=(4, 8, 8), fc_width=8), 32, 8, 8),
    "imagenet_resnet18": (dict(widths=(4, 4, 8, 8)), 224, 32, 8),
}
#: the layers each network's top consists of, in order (the builders' docstrings).
TOP_LAYERS = {"cifar_resnet32": ("avg_pool", "score", "logits"),
              "cnn9": ("fc6", "score", "logits"),
              "imagenet_resnet18": ("avg_pool", "score", "logits")}


def tiny(network, **kwargs):
    sizes = NETWORKS[network][0]
    keras.utils.set_random_seed(0)  # the same weights every run (tolerances below are fixed)
    return build_model(network, num_classes=CLASSES, **sizes, **kwargs)


def images(network, side=None, batch=2, seed=0):
    side = side or NETWORKS[network][1]
    height, width = (side, side) if isinstance(side, int) else side
    rng = np.random.default_rng(seed)
    if network == "imagenet_resnet18":  # mean-subtracted RGB
        return rng.normal(0.0, 60.0, (batch, height, width, 3)).astype(np.float32)
    return rng.uniform(0.0, 255.0, (batch, height, width, 3)).astype(np.float32)


def feature_shape(network, height, width, batch=2):
    """``[N, ceil(H / stride), ceil(W / stride), C]``, the hand-derived feature map."""
    _, _, stride, channels = NETWORKS[network]
    return (batch, math.ceil(height / stride), math.ceil(width / stride), channels)


def copy_weights_by_path(source, target):
    """Assign every weight of ``target`` from ``source``'s weight of the same path."""
    by_path = {w.path: w for w in source.weights}
    for weight in target.weights:
        weight.assign(by_path[weight.path])


def run(model, x, training=False):
    return np.asarray(model(x, training=training))


# ------------------------------------------------------------------- include_top=False


@pytest.mark.parametrize("network", NETWORKS)
def test_features_are_the_last_feature_map(network):
    side = NETWORKS[network][1]
    expected = feature_shape(network, side, side)
    # hand-derived values written out: 32/4 = 8, 32/8 = 4, 224/32 = 7
    assert expected[1:3] == {"cifar_resnet32": (8, 8), "cnn9": (4, 4),
                             "imagenet_resnet18": (7, 7)}[network]
    model = tiny(network, include_top=False)
    assert tuple(model.output.shape) == (None,) + expected[1:]
    features = run(model, images(network))
    assert features.shape == expected and np.all(np.isfinite(features))


@pytest.mark.parametrize("network", NETWORKS)
def test_features_model_is_the_network_without_its_top(network):
    """Same layers (names in order) and weights as include_top=True, less the top's."""
    full = tiny(network)
    features = tiny(network, include_top=False)
    top = TOP_LAYERS[network]
    assert tuple(layer.name for layer in full.layers[-len(top):]) == top
    assert [layer.name for layer in features.layers] == [layer.name for layer in
                                                         full.layers[:-len(top)]]
    top_paths = {w.path for name in top for w in full.get_layer(name).weights}
    assert [(w.path, tuple(w.shape)) for w in features.weights] == [
        (w.path, tuple(w.shape)) for w in full.weights if w.path not in top_paths]


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("pooling,reduce", [("avg", np.mean), ("max", np.max)])
def test_pooling_is_a_global_reduction_of_the_features(network, pooling, reduce):
    features_model = tiny(network, include_top=False)
    pooled_model = tiny(network, include_top=False, pooling=pooling)
    copy_weights_by_path(features_model, pooled_model)
    x = images(network, seed=1)
    expected = reduce(run(features_model, x), axis=(1, 2))
    pooled = run(pooled_model, x)
    assert pooled.shape == (2, NETWORKS[network][3])
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("network", ["cifar_resnet32", "imagenet_resnet18"])
def test_resnet_logits_are_the_score_of_the_averaged_features(network):
    """The ResNets' top: an average pool over the whole 8x8 / 7x7 map, then a 1x1
    conv, so ``logits = mean_hw(features) @ score_kernel``."""
    full = tiny(network)
    features_model = tiny(network, include_top=False)
    copy_weights_by_path(full, features_model)
    x = images(network, seed=2)
    kernel = full.get_layer("score").kernel.numpy()[0, 0]  # [C, classes]
    expected = run(features_model, x).mean(axis=(1, 2)) @ kernel
    np.testing.assert_allclose(run(full, x), expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())


def test_cnn9_logits_are_fc6_then_score_of_the_features():
    """CNN-9 baseline (plain fc6): ``logits = (sum_hwc features * fc6) @ score``."""
    full = tiny("cnn9", variant="baseline")
    features_model = tiny("cnn9", variant="baseline", include_top=False)
    copy_weights_by_path(full, features_model)
    x = images("cnn9", seed=3)
    fc6 = full.get_layer("fc6").kernel.numpy()          # [4, 4, C, fc]
    score = full.get_layer("score").kernel.numpy()[0, 0]  # [fc, classes]
    expected = np.einsum("nhwc,hwcf->nf", run(features_model, x), fc6) @ score
    # float32 sums in another order: round-off relative to the largest logit
    np.testing.assert_allclose(run(full, x), expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())


# -------------------------------------------------------------------- include_top=True


def top_weight_paths(network, variant):
    """The top's weights, by hand: CIFAR / ImageNet ``score/kernel``; CNN-9 also fc6's
    ``kernel`` and, for tanh (a learned radius, rho from the moving patch-norm mean),
    ``radius`` and ``moving_patch_norm_mean``."""
    if network != "cnn9":
        return {"score/kernel"}
    fc6 = ("kernel", "radius", "moving_patch_norm_mean") if variant == "tanh_cos" else ("kernel",)
    return {"score/kernel"} | {f"fc6/{name}" for name in fc6}


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("variant", ["tanh_cos", "baseline"])
def test_include_top_true_is_the_network_of_before(network, variant):
    default = tiny(network, variant=variant)
    explicit = tiny(network, variant=variant, include_top=True, pooling=None,
                    input_shape=(NETWORKS[network][1],) * 2 + (3,))
    features = tiny(network, variant=variant, include_top=False)
    paths = [w.path for w in default.weights]
    assert len(paths) == len(features.weights) + len(top_weight_paths(network, variant))
    assert set(paths) - {w.path for w in features.weights} == top_weight_paths(network, variant)
    assert [(w.path, tuple(w.shape)) for w in explicit.weights] == [
        (w.path, tuple(w.shape)) for w in default.weights]
    logits = run(default, images(network))
    assert logits.shape == (2, CLASSES) and np.all(np.isfinite(logits))


@pytest.mark.parametrize("network", NETWORKS)
def test_head_arguments_are_not_network_options(network):
    """model_spec.json keeps its options: the networks' options are those of before."""
    before = {"cifar_resnet32": {"widths", "units_per_stage"}, "imagenet_resnet18": {"widths"},
              "cnn9": {"widths", "fc_width", "relu"}}[network]
    assert set(get_network(network).options) == before
    assert set(resolve(network).options) == before


# ------------------------------------------------------------------------- input_shape


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("side", [64, (48, 40)])
def test_other_input_sizes_without_the_top(network, side):
    height, width = (side, side) if isinstance(side, int) else side
    expected = feature_shape(network, height, width)
    # written out: 64 -> 16 / 8 / 2; (48, 40) -> (12, 10) / (6, 5) / (2, 2)
    assert expected[1:3] == {("cifar_resnet32", 64): (16, 16), ("cnn9", 64): (8, 8),
                             ("imagenet_resnet18", 64): (2, 2),
                             ("cifar_resnet32", 48): (12, 10), ("cnn9", 48): (6, 5),
                             ("imagenet_resnet18", 48): (2, 2)}[(network, height)]
    model = tiny(network, include_top=False, input_shape=(height, width, 3))
    assert run(model, images(network, (height, width))).shape == expected


@pytest.mark.parametrize("network", NETWORKS)
def test_any_size_with_unknown_height_and_width(network):
    model = tiny(network, include_top=False, pooling="avg", input_shape=(None, None, 3))
    assert tuple(model.output.shape) == (None, NETWORKS[network][3])
    for side in (64, (40, 72)):
        assert run(model, images(network, side)).shape == (2, NETWORKS[network][3])


def test_cifar_resnet_takes_odd_sizes_and_other_channel_counts():
    """SAME strides round up: 30 -> 15 -> 8; a grayscale input changes only the root."""
    model = tiny("cifar_resnet32", include_top=False, input_shape=(30, 30, 1))
    x = np.random.default_rng(4).uniform(0, 255, (2, 30, 30, 1)).astype(np.float32)
    assert run(model, x).shape == (2, 8, 8, 8)
    assert tuple(model.get_layer("root").kernel.shape) == (3, 3, 1, 4)


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("input_shape", [(3, 32, 32), (1, 64, 64), (32, 32), (32, 32, 3, 1),
                                         (32, 32, None), (0, 32, 3), (32.0, 32, 3), "32x32x3"])
def test_bad_input_shape_is_refused(network, input_shape):
    with pytest.raises(ValueError, match="input_shape") as info:
        tiny(network, include_top=False, input_shape=input_shape)
    assert repr(input_shape) in str(info.value)


@pytest.mark.parametrize("network", NETWORKS)
def test_top_refuses_other_sizes(network):
    for input_shape in [(64, 64, 3), (None, None, 3)]:
        with pytest.raises(ValueError, match="input_shape") as info:
            tiny(network, input_shape=input_shape)
        assert repr(input_shape) in str(info.value)


@pytest.mark.parametrize("network,side", [("cifar_resnet32", 2), ("cnn9", 4),
                                          ("imagenet_resnet18", 16)])
def test_inputs_smaller_than_the_stride_are_refused(network, side):
    with pytest.raises(ValueError, match=rf"input_shape.*\({side}, {side}, 3\)"):
        tiny(network, include_top=False, input_shape=(side, side, 3))


# ---------------------------------------------------------------- include_top / pooling


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("kwargs,argument", [
    (dict(pooling="avg"), "pooling"),
    (dict(pooling="max", include_top=True), "pooling"),
    (dict(pooling="mean", include_top=False), "pooling"),
    (dict(pooling="AVG", include_top=False), "pooling"),
    (dict(include_top="yes"), "include_top"),
    (dict(include_top=1), "include_top"),
    (dict(include_top=None), "include_top"),
])
def test_bad_head_arguments_are_refused(network, kwargs, argument):
    with pytest.raises(ValueError, match=argument) as info:
        tiny(network, **kwargs)
    assert repr(kwargs[argument]) in str(info.value)


def test_builder_without_head_arguments_refuses_them_by_name():
    """A registered network whose builder has no ``include_top`` (README's tiny_vgg)."""
    def builder(conv, norm, num_classes=10, widths=(4,), name="toy"):
        raise AssertionError("not to be built")

    toy = Network(name="toy", builder=builder, input_kind="cifar", num_classes=10,
                  weight_decay=0.0, orthogonality=0.0, default_recipe="r",
                  default_dataset="d", description="")
    assert head_arguments(toy) == {}
    with pytest.raises(ValueError, match=r"^include_top: .*'toy'.*False$"):
        head_arguments(toy, include_top=False, pooling="avg")
    with pytest.raises(ValueError, match=r"^input_shape: .*'toy'.*\(64, 64, 3\)$"):
        head_arguments(toy, input_shape=(64, 64, 3))


# ---------------------------------------------------------------------- mixed precision


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("policy,compute", [("mixed_bfloat16", "bfloat16"),
                                            ("mixed_float16", "float16")])
def test_logits_are_float32_under_mixed_precision(network, policy, compute):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        full = tiny(network)
        pooled = tiny(network, include_top=False, pooling="avg")
        x = images(network)
        assert full.get_layer("score").compute_dtype == "float32"
        for training in (True, False):
            logits = full(x, training=training)
            assert keras.backend.standardize_dtype(logits.dtype) == "float32", training
            assert tuple(logits.shape) == (2, CLASSES)
            if training or compute == "bfloat16":
                # float16 inference of a fresh model may overflow (inf, then nan): the
                # zero-start moving variances make every BN a x1/sqrt(1e-3) = x31.6 gain.
                assert np.all(np.isfinite(np.asarray(logits))), training
            features = pooled(x, training=training)
            assert keras.backend.standardize_dtype(features.dtype) == compute, training
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.config.dtype_policy().name == previous.name
