"""CNN-9 (``dcnet_keras.models.cnn9``, registered as ``cnn9``): the architecture against
a count and a NumPy forward written here, its regularisers, its presets, and every
operator x {BN, no BN} x {ReLU, no ReLU} training, ``.keras`` round trip and export.

The network (the authors' SphereNet CNN-9, the paper's Tables 2-3): input
``(rgb - 127.5) / 128``; three stages of three 3x3 SAME convs (widths 128, 192, 256),
each followed by BN and ReLU; a 2x2 stride-2 SAME max pool after each stage
(32 -> 16 -> 8 -> 4); ``fc6`` a 4x4 VALID conv to 256 (no BN, no ReLU); ``score`` a
plain 1x1 conv to the classes with weight decay 5e-4.  The nine convs and fc6 are the
operator (decoupled, orthogonality 1e-5; ``baseline``: plain, weight decay 5e-4); BN
gamma/beta carry weight decay 5e-4.

Tiers: the quick tier trains every operator once (each of BN / no BN and ReLU / no ReLU
at least twice) and exports two; the ``e2e`` tier trains the rest of the cross product
and exports every other operator once.
"""

import numpy as np
import pytest

import keras

from dcnet_keras import operators
from dcnet_keras.layers import DecoupledConv2D, PlainConv2D, TF1BatchNormalization
from dcnet_keras.models import build_model

FULL_WIDTHS = (128, 192, 256)
FULL_FC = 256
TINY = dict(widths=(4, 8, 8), fc_width=8)
STAGE_CONVS = tuple(f"conv{s}_{i}" for s in (1, 2, 3) for i in range(3))
OPERATOR_LAYERS = STAGE_CONVS + ("fc6",)
WEIGHT_DECAY = 5e-4
ORTHOGONALITY = 1e-5
BN_EPSILON = 1e-3
NORM_EPS = 1e-4
#: magnitudes with a learned radius per output channel (SPEC / paper: ball, tanh, seg).
RADIUS_MAGNITUDES = ("ball", "tanh", "seg")

#: every operator: each magnitude with cos, each angular with tanh, and baseline.
OPERATORS = (("baseline",) + tuple(f"{m}_cos" for m in operators.MAGNITUDES)
             + tuple(f"tanh_{a}" for a in operators.ANGULARS if a != "cos"))
#: (batch_norm, relu)
SWITCHES = ((True, True), (True, False), (False, True), (False, False))
QUICK_EXPORTS = ("baseline", "tanh_cos")


def quick_switches(operator):
    """The one (batch_norm, relu) combination of ``operator`` in the quick tier."""
    return SWITCHES[OPERATORS.index(operator) % len(SWITCHES)]


def export_switches(operator):
    """The one combination of ``operator`` that is also exported: its quick one for
    :data:`QUICK_EXPORTS`, else its first e2e one without BN (the cheaper export; the
    quick ``baseline`` export is the one with BN)."""
    if operator in QUICK_EXPORTS:
        return quick_switches(operator)
    return next(s for s in reversed(SWITCHES) if s != quick_switches(operator))


def training_cases():
    cases = []
    for operator in OPERATORS:
        for switches in SWITCHES:
            quick = switches == quick_switches(operator)
            export = switches == export_switches(operator)
            marks = () if quick else (pytest.mark.e2e,)
            name = (f"{operator}-{'bn' if switches[0] else 'nobn'}-"
                    f"{'relu' if switches[1] else 'norelu'}{'-export' if export else ''}")
            cases.append(pytest.param(operator, *switches, export, marks=marks, id=name))
    return cases


def requires_tensorflow():
    pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TrainStep and the SavedModel export run on the TensorFlow backend")


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# ----------------------------------------------------------------------------- the count


def expected_trainable(widths, fc_width, classes, batch_norm, radius):
    """Trainable parameters derived from the architecture (no biases anywhere).

    3x3 stage convs ``9 * Cin * Cout`` (+ ``Cout`` radii for a learned radius) and
    ``2 * Cout`` BN gamma/beta; fc6 ``4 * 4 * C3 * fc`` (+ ``fc`` radii), no BN;
    score ``1 * 1 * fc * classes``, no BN, no radius.
    """
    total, cin = 0, 3
    for width in widths:
        for _ in range(3):
            total += 3 * 3 * cin * width + (width if radius else 0)
            total += 2 * width if batch_norm else 0
            cin = width
    total += 4 * 4 * cin * fc_width + (fc_width if radius else 0)
    return total + 1 * 1 * fc_width * classes


def test_hand_count_at_full_width_written_out():
    """The formula above against the arithmetic done by hand at (128, 192, 256), fc 256."""
    convs = (3 * 3 * 3 * 128 + 2 * 3 * 3 * 128 * 128          # 3456 + 294912
             + 3 * 3 * 128 * 192 + 2 * 3 * 3 * 192 * 192      # 221184 + 663552
             + 3 * 3 * 192 * 256 + 2 * 3 * 3 * 256 * 256)     # 442368 + 1179648
    fc6, score = 4 * 4 * 256 * 256, 256 * 10                  # 1048576, 2560
    bn = 2 * 3 * (128 + 192 + 256)                            # 3456
    radii = 3 * (128 + 192 + 256) + 256                       # 1984
    assert convs + fc6 + score + bn == 3_859_712
    assert expected_trainable(FULL_WIDTHS, FULL_FC, 10, True, False) == 3_859_712
    assert expected_trainable(FULL_WIDTHS, FULL_FC, 10, True, True) == 3_859_712 + radii
    assert expected_trainable(FULL_WIDTHS, FULL_FC, 10, False, True) == 3_859_712 + radii - bn


@pytest.mark.parametrize("variant,batch_norm,radius", [
    ("baseline", True, False), ("sphere_cos", True, False), ("tanh_cos", True, True),
    ("tanh_cos", False, True), ("baseline", False, False), ("ball_sigmoid", True, True)])
def test_trainable_count_full_width(variant, batch_norm, radius):
    model = build_model("cnn9", variant=variant, batch_norm=batch_norm)
    assert trainable_count(model) == expected_trainable(FULL_WIDTHS, FULL_FC, 10, batch_norm,
                                                        radius)


@pytest.mark.parametrize("variant,batch_norm,radius", [
    ("tanh_cos", True, True), ("log_sqcos", False, False), ("baseline", True, False)])
def test_trainable_count_small_width(variant, batch_norm, radius):
    model = build_model("cnn9", variant=variant, batch_norm=batch_norm, num_classes=7,
                        widths=(5, 6, 7), fc_width=9)
    assert trainable_count(model) == expected_trainable((5, 6, 7), 9, 7, batch_norm, radius)


def test_non_trainable_are_the_moving_averages():
    """BN: moving mean and variance per channel; a learned radius: one mean patch norm."""
    model = build_model("cnn9", variant="tanh_cos", **TINY)
    bn_channels = 3 * (4 + 8 + 8)
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == (
        2 * bn_channels + len(OPERATOR_LAYERS))


# ----------------------------------------------------------------------------- structure


def test_layer_names_kernels_and_spatial_sizes():
    model = build_model("cnn9", variant="tanh_cos", num_classes=10, **TINY)
    sizes = {"conv1": 32, "pool1": 16, "conv2": 16, "pool2": 8, "conv3": 8, "pool3": 4}
    cin = 3
    for name in STAGE_CONVS:
        layer = model.get_layer(name)
        width = TINY["widths"][int(name[4]) - 1]
        assert tuple(layer.kernel.shape) == (3, 3, cin, width), name
        assert layer.padding == "same" and tuple(layer.strides) == (1, 1)
        assert tuple(layer.output.shape) == (None, sizes[name[:5]], sizes[name[:5]], width)
        cin = width
    for stage in (1, 2, 3):
        pool = model.get_layer(f"pool{stage}")
        assert isinstance(pool, keras.layers.MaxPooling2D)
        assert tuple(pool.pool_size) == (2, 2) and tuple(pool.strides) == (2, 2)
        assert pool.padding == "same"
        assert tuple(pool.output.shape)[1:3] == (sizes[f"pool{stage}"],) * 2
    fc6, score = model.get_layer("fc6"), model.get_layer("score")
    assert tuple(fc6.kernel.shape) == (4, 4, 8, 8) and fc6.padding == "valid"
    assert tuple(fc6.output.shape) == (None, 1, 1, 8)
    assert tuple(score.kernel.shape) == (1, 1, 8, 10)
    assert tuple(score.output.shape) == (None, 1, 1, 10)
    assert tuple(model.output.shape) == (None, 10)
    convs = [layer.name for layer in model.layers
             if isinstance(layer, (DecoupledConv2D, PlainConv2D))]
    assert convs == list(OPERATOR_LAYERS) + ["score"]


def test_rescale_is_rgb_minus_127_5_over_128():
    model = build_model("cnn9", variant="baseline", **TINY)
    rgb = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    rescale = keras.Model(model.input, model.get_layer("rescale").output)
    np.testing.assert_allclose(np.asarray(rescale(rgb)), (rgb - 127.5) / 128.0, atol=1e-6)


@pytest.mark.parametrize("variant", ["tanh_cos", "baseline"])
def test_relu_and_batch_norm_switches(variant):
    both = build_model("cnn9", variant=variant, **TINY)
    assert len(layers_of(both, keras.layers.ReLU)) == 9
    assert len(layers_of(both, TF1BatchNormalization)) == 9
    # conv -> BN -> ReLU in every stage conv, nothing after fc6 but score
    names = [layer.name for layer in both.layers]
    for conv in STAGE_CONVS:
        nxt, after = both.layers[names.index(conv) + 1], both.layers[names.index(conv) + 2]
        assert isinstance(nxt, TF1BatchNormalization) and isinstance(after, keras.layers.ReLU)
    assert names[names.index("fc6") + 1] == "score"

    no_relu = build_model("cnn9", variant=variant, relu=False, **TINY)
    assert not layers_of(no_relu, keras.layers.ReLU)
    assert not layers_of(no_relu, keras.layers.Activation)
    assert len(layers_of(no_relu, TF1BatchNormalization)) == 9
    no_bn = build_model("cnn9", variant=variant, batch_norm=False, **TINY)
    assert not layers_of(no_bn, TF1BatchNormalization)
    assert len(layers_of(no_bn, keras.layers.ReLU)) == 9
    neither = build_model("cnn9", variant=variant, batch_norm=False, relu=False, **TINY)
    kinds = {type(layer) for layer in neither.layers}
    assert TF1BatchNormalization not in kinds and keras.layers.ReLU not in kinds


# ----------------------------------------------------------------------------- regularisers


def _randomise_trainables(model, seed):
    """Random gamma/beta/radius (their inits 1/0/1 would hide a missing term)."""
    rng = np.random.default_rng(seed)
    for layer in layers_of(model, TF1BatchNormalization):
        layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype(np.float32))
        layer.beta.assign(rng.normal(0.0, 0.3, layer.beta.shape).astype(np.float32))
    for layer in layers_of(model, DecoupledConv2D):
        if hasattr(layer, "radius_weight"):
            layer.radius_weight.assign(
                rng.uniform(0.5, 2.0, layer.radius_weight.shape).astype(np.float32))


def numpy_orthogonality(kernel, strength):
    w = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
    w = w / np.sqrt((w ** 2).sum(axis=0, keepdims=True) + NORM_EPS)
    gram = w.T @ w
    return strength * ((gram - np.eye(gram.shape[0])) ** 2).sum() / 2.0


def numpy_weight_decay(values, wd):
    return wd * sum((np.asarray(v, np.float64) ** 2).sum() for v in values) / 2.0


@pytest.mark.parametrize("variant", ["baseline", "tanh_cos", "sphere_sigmoid"])
def test_regularisers_where_the_dcnet_code_puts_them(variant):
    from dcnet_keras.regularizers import regularization_terms

    model = build_model("cnn9", variant=variant, **TINY)
    _randomise_trainables(model, seed=3)
    decoupled = variant != "baseline"
    for name in OPERATOR_LAYERS:
        layer = model.get_layer(name)
        if decoupled:
            assert isinstance(layer, DecoupledConv2D), name
            assert (layer.magnitude + "_" + layer.angular) == variant
            assert layer.orthogonality == ORTHOGONALITY
        else:
            assert isinstance(layer, PlainConv2D) and layer.weight_decay == WEIGHT_DECAY, name
    score = model.get_layer("score")
    assert isinstance(score, PlainConv2D) and score.weight_decay == WEIGHT_DECAY
    bns = layers_of(model, TF1BatchNormalization)
    assert len(bns) == 9 and all(bn.weight_decay == WEIGHT_DECAY for bn in bns)

    decayed = [score.kernel] + [w for bn in bns for w in (bn.gamma, bn.beta)]
    if not decoupled:
        decayed += [model.get_layer(name).kernel for name in OPERATOR_LAYERS]
    expected_reg = numpy_weight_decay([w.numpy() for w in decayed], WEIGHT_DECAY)
    expected_orth = 0.0
    if decoupled:
        expected_orth = sum(numpy_orthogonality(model.get_layer(name).kernel.numpy(),
                                                ORTHOGONALITY) for name in OPERATOR_LAYERS)
    terms = regularization_terms(model)
    np.testing.assert_allclose(float(terms["reg"]), expected_reg, rtol=1e-5)
    np.testing.assert_allclose(float(terms["orth"]), expected_orth, rtol=1e-4, atol=1e-12)
    total = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    np.testing.assert_allclose(total, expected_reg + expected_orth, rtol=1e-5)


# ----------------------------------------------------------------------------- forward


def np_conv_same_3x3(x, kernel):
    """TF SAME 3x3 stride 1: one zero cell on every side."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    return sum(np.einsum("nhwc,co->nhwo", xp[:, a:a + h, b:b + w, :], kernel[a, b])
               for a in range(3) for b in range(3))


def np_max_pool(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def np_cnn9(model, rgb, decoupled, batch_norm, relu):
    """float64 CNN-9 inference from the model's weights (sphere_cos or baseline)."""
    x = (np.asarray(rgb, np.float64) - 127.5) / 128.0
    for name in STAGE_CONVS:
        kernel = model.get_layer(name).kernel.numpy().astype(np.float64)
        if decoupled:  # sphere x cos: <P, w/|w|> / |P|
            w_hat = kernel / np.sqrt((kernel ** 2).sum(axis=(0, 1, 2)) + NORM_EPS)
            energy = np_conv_same_3x3((x ** 2).sum(-1, keepdims=True), np.ones((3, 3, 1, 1)))
            x = np_conv_same_3x3(x, w_hat) / np.sqrt(energy + NORM_EPS)
        else:
            x = np_conv_same_3x3(x, kernel)
        if batch_norm:
            bn = model.get_layer(name + "__bn")
            mean, var = bn.moving_mean.value.numpy(), bn.moving_variance.value.numpy()
            x = (x - mean) / np.sqrt(var + BN_EPSILON) * bn.gamma.numpy() + bn.beta.numpy()
        if relu:
            x = np.maximum(x, 0.0)
        if name.endswith("_2"):
            x = np_max_pool(x)
    fc6 = model.get_layer("fc6").kernel.numpy().astype(np.float64)   # [4, 4, C, F], VALID
    if decoupled:
        w_hat = fc6 / np.sqrt((fc6 ** 2).sum(axis=(0, 1, 2)) + NORM_EPS)
        x = np.einsum("nabc,abco->no", x, w_hat) / np.sqrt(
            (x ** 2).sum(axis=(1, 2, 3))[:, None] + NORM_EPS)
    else:
        x = np.einsum("nabc,abco->no", x, fc6)
    return x @ model.get_layer("score").kernel.numpy()[0, 0].astype(np.float64)


@pytest.mark.parametrize("variant,batch_norm,relu", [
    ("baseline", True, True), ("sphere_cos", True, False), ("sphere_cos", False, True)])
def test_inference_forward_equals_numpy(variant, batch_norm, relu):
    model = build_model("cnn9", variant=variant, batch_norm=batch_norm, relu=relu,
                        num_classes=7, widths=(3, 4, 5), fc_width=6)
    rng = np.random.default_rng(5)
    _randomise_trainables(model, seed=6)
    for bn in layers_of(model, TF1BatchNormalization):
        bn.moving_mean.value.assign(rng.normal(0, 0.2, bn.moving_mean.value.shape)
                                    .astype(np.float32))
        bn.moving_variance.value.assign(rng.uniform(0.5, 2.0, bn.moving_variance.value.shape)
                                        .astype(np.float32))
    rgb = rng.integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    expected = np_cnn9(model, rgb, variant != "baseline", batch_norm, relu)
    actual = np.asarray(model(rgb, training=False), np.float64)
    assert actual.shape == (2, 7)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


# ----------------------------------------------------------------------------- presets


@pytest.mark.parametrize("preset,magnitude,angular", [
    ("cnn9_baseline", None, None), ("cnn9_sphere_cos", "sphere", "cos"),
    ("cnn9_ball_cos", "ball", "cos"), ("cnn9_tanh_cos", "tanh", "cos")])
def test_presets_build_the_paper_models(preset, magnitude, angular):
    model = build_model(preset)
    assert tuple(model.output.shape) == (None, 10)
    assert tuple(model.input.shape) == (None, 32, 32, 3)
    assert tuple(model.get_layer("conv1_0").kernel.shape) == (3, 3, 3, 128)
    assert tuple(model.get_layer("conv2_0").kernel.shape) == (3, 3, 128, 192)
    assert tuple(model.get_layer("conv3_2").kernel.shape) == (3, 3, 256, 256)
    assert tuple(model.get_layer("fc6").kernel.shape) == (4, 4, 256, 256)
    assert len(layers_of(model, TF1BatchNormalization)) == 9
    assert len(layers_of(model, keras.layers.ReLU)) == 9
    for name in OPERATOR_LAYERS:
        layer = model.get_layer(name)
        if magnitude is None:
            assert isinstance(layer, PlainConv2D)
        else:
            assert isinstance(layer, DecoupledConv2D)
            assert (layer.magnitude, layer.angular) == (magnitude, angular)
    assert trainable_count(model) == expected_trainable(
        FULL_WIDTHS, FULL_FC, 10, True, magnitude in RADIUS_MAGNITUDES)


def test_network_with_switches_off():
    model = build_model("cnn9", variant="tanh_cos", batch_norm=False, relu=False)
    assert tuple(model.output.shape) == (None, 10)
    kinds = {type(layer) for layer in model.layers}
    assert TF1BatchNormalization not in kinds and keras.layers.ReLU not in kinds
    assert all(isinstance(model.get_layer(n), DecoupledConv2D) for n in OPERATOR_LAYERS)
    assert trainable_count(model) == expected_trainable(FULL_WIDTHS, FULL_FC, 10, False, True)


@pytest.mark.parametrize("options,named", [
    (dict(units_per_stage=5), "units_per_stage"), (dict(widths=(4, 8)), "widths"),
    (dict(fc_width=0), "fc_width")])
def test_bad_options_are_one_line_value_errors(options, named):
    with pytest.raises(ValueError) as info:
        build_model("cnn9", variant="tanh_cos", **options)
    message = str(info.value)
    assert named in message and "\n" not in message
    assert repr(next(iter(options.values()))) in message


# ----------------------------------------------------------------------------- training


STEPS = 20
BATCH = 32
LEARNING_RATE = 1e-2  # at 1e-3, 20 Adam steps barely move some no-BN + ReLU models
FALL = 0.98           # mean of the last 4 step losses below 98% of the first 4
WINDOW = 4            # even: both windows hold each of the two batches twice


@pytest.fixture(scope="module")
def cifar10_batches():
    """Two fixed training batches of 32 and 8 test images of synthetic CIFAR-10."""
    from dcnet_keras.data.synthetic import synthetic_cifar

    train, labels, test, _ = synthetic_cifar(num_train=2 * BATCH, num_test=8, num_classes=10,
                                             seed=0)
    batches = [(train[i:i + BATCH].astype(np.float32), labels[i:i + BATCH].astype(np.int32))
               for i in (0, BATCH)]
    return batches, test


def train(model, batches):
    import tensorflow as tf

    from dcnet_keras.optimizers import cifar_optimizer
    from dcnet_keras.train_step import TrainStep

    optimizer = cifar_optimizer(LEARNING_RATE)
    optimizer.build(model.trainable_variables)  # slots first: the step is traced once
    step = TrainStep(model, optimizer)
    tensors = [(tf.constant(x), tf.constant(y)) for x, y in batches]
    return [float(step(*tensors[i % len(tensors)])["loss"]) for i in range(STEPS)]


def check_round_trip(model, path, images):
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [(type(l), l.name) for l in loaded.layers] == [(type(l), l.name) for l in model.layers]
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for ours, theirs in zip(model.weights, loaded.weights):
        assert np.array_equal(ours.numpy(), theirs.numpy()), ours.path
    logits = np.asarray(model(images, training=False))
    assert np.all(np.isfinite(logits))
    assert np.array_equal(np.asarray(loaded(images, training=False)), logits)


def check_export(model, out, images):
    import tensorflow as tf

    from dcnet_keras.export import export_saved_model

    path = export_saved_model(model, out, kind="cifar")
    served = tf.saved_model.load(path).signatures["serving_default"](
        images=tf.constant(images.astype(np.uint8)))
    logits = np.asarray(model(images.astype(np.float32), training=False))
    scale = max(float(np.abs(logits).max()), 1.0)
    np.testing.assert_allclose(served["logits"].numpy(), logits, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_array_equal(served["classes"].numpy(), logits.argmax(axis=-1))


@pytest.mark.parametrize("operator,batch_norm,relu,export", training_cases())
def test_trains_round_trips_and_exports(operator, batch_norm, relu, export, cifar10_batches,
                                        tmp_path):
    requires_tensorflow()
    batches, test_images = cifar10_batches
    keras.utils.set_random_seed(0)
    model = build_model("cnn9", variant=operator, batch_norm=batch_norm, relu=relu, **TINY)
    assert bool(layers_of(model, TF1BatchNormalization)) == batch_norm
    assert bool(layers_of(model, keras.layers.ReLU)) == relu

    losses = train(model, batches)
    assert np.all(np.isfinite(losses)), losses
    first, last = np.mean(losses[:WINDOW]), np.mean(losses[-WINDOW:])
    assert last < FALL * first, (first, last, losses)

    check_round_trip(model, str(tmp_path / "cnn9.keras"), test_images.astype(np.float32))
    if export:
        check_export(model, tmp_path / "serving", test_images)


def test_tiers_cover_the_cross_product_once():
    """Every operator x switches once; each operator quick once and exported once."""
    cases = training_cases()
    assert len(cases) == len(OPERATORS) * 4 == len({c.id for c in cases})
    quick = [c for c in cases if not c.marks]
    assert sorted(c.values[0] for c in quick) == sorted(OPERATORS)
    for switches in SWITCHES:
        assert sum(tuple(c.values[1:3]) == switches for c in quick) >= 2
    exported = [c for c in cases if c.values[3]]
    assert sorted(c.values[0] for c in exported) == sorted(OPERATORS)
    assert sorted(c.values[0] for c in exported if not c.marks) == sorted(QUICK_EXPORTS)
