"""Loss, regularisers, optimisers, schedules, weight projection and the train step.

Every expectation here is an independent NumPy transcription of SPEC.md section 4
(never an earlier output of the library itself).
"""

import keras
import numpy as np
import pytest

from dcnet_keras.callbacks import WeightProjection, project_weights, projection_due
from dcnet_keras.layers import DecoupledConv2D, PlainConv2D, TF1BatchNormalization
from dcnet_keras.losses import dcnet_cross_entropy
from dcnet_keras.models import build_model
from dcnet_keras.optimizers import TF1Momentum, cifar_optimizer
from dcnet_keras.regularizers import FilterOrthogonality, TF1WeightDecay, regularization_terms
from dcnet_keras.schedules import cifar_schedule, imagenet_schedule, step_schedule

WD = 5e-4
ORTH = 1e-5
TINY_WIDTHS = (4, 8, 16)


# --------------------------------------------------------------------------------------
# NumPy references (float64), straight from SPEC.md section 4.


def np_cross_entropy(labels, logits):
    logits = np.asarray(logits, np.float64)
    k = logits.shape[-1]
    z = logits - logits.max(axis=-1, keepdims=True)
    softmax = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    onehot = np.eye(k)[np.asarray(labels).reshape(-1)]
    targets = 0.99 * onehot + 0.01 / k
    return float(np.mean(-np.sum(targets * np.log(softmax + 1e-4), axis=-1)))


def np_weight_decay(w, wd):
    w = np.asarray(w, np.float64)
    return wd * np.sum(w ** 2) / 2.0


def np_orthogonality(kernel, strength):
    kernel = np.asarray(kernel, np.float64)
    w = kernel.reshape(-1, kernel.shape[-1])
    w = w / np.sqrt(np.sum(w ** 2, axis=0, keepdims=True) + 1e-4)
    gram = w.T @ w
    return strength * np.sum((gram - np.eye(w.shape[1])) ** 2) / 2.0


def np_project(kernel):
    kernel = np.asarray(kernel, np.float64)
    return kernel / np.sqrt(np.sum(kernel ** 2, axis=(0, 1, 2)) + 1e-4)


def channel_norms(kernel):
    return np.sqrt(np.sum(np.asarray(kernel, np.float64) ** 2, axis=(0, 1, 2)))


def layers_of(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


def randomize(model, seed=0):
    """Give every weight (trainable or not) a random non-trivial value, so that a
    regulariser put on the wrong weights, or left off one, changes the sums."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        w.assign(rng.normal(0.0, 0.5, size=shape).astype(np.float32) + 0.1)


def tiny(variant="tanh_cos"):
    return build_model("cifar_resnet32", variant=variant, num_classes=10, widths=TINY_WIDTHS,
                       units_per_stage=1)


# --------------------------------------------------------------------------------------
# Loss.


@pytest.mark.parametrize("num_classes", [100, 7])
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("label_shape", ["flat", "column"])
def test_cross_entropy_matches_numpy(num_classes, batch, label_shape):
    rng = np.random.default_rng(num_classes * 100 + batch)
    # scale 6: many softmax entries fall below 1e-4, so the floor matters
    logits = rng.normal(0.0, 6.0, size=(batch, num_classes))
    labels = rng.integers(0, num_classes, size=batch)
    expected = np_cross_entropy(labels, logits)
    given = labels if label_shape == "flat" else labels.reshape(-1, 1)
    got = dcnet_cross_entropy(given, logits.astype(np.float32))
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(got)), expected, rtol=1e-6)
    # float64 logits go through in float64
    got64 = dcnet_cross_entropy(given, logits)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(got64)), expected, rtol=1e-10)


def test_cross_entropy_is_not_plain_or_keras_smoothed_crossentropy():
    """The floor and the smoothing are part of the loss (the test can tell them apart)."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0.0, 6.0, size=(4, 10))
    labels = rng.integers(0, 10, size=4)
    got = float(keras.ops.convert_to_numpy(dcnet_cross_entropy(labels, logits)))
    plain = float(np.mean(keras.ops.convert_to_numpy(
        keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))))
    assert abs(got - plain) > 1e-3
    np.testing.assert_allclose(got, np_cross_entropy(labels, logits), rtol=1e-10)


# --------------------------------------------------------------------------------------
# Regularisers.


def test_tf1_weight_decay_matches_numpy():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 3, 5, 7)).astype(np.float32)
    for wd in (5e-4, 1e-4, 0.3):
        got = float(keras.ops.convert_to_numpy(TF1WeightDecay(wd)(keras.ops.convert_to_tensor(w))))
        np.testing.assert_allclose(got, np_weight_decay(w, wd), rtol=1e-6)
    assert TF1WeightDecay.from_config(TF1WeightDecay(0.3).get_config()).wd == 0.3


@pytest.mark.parametrize("shape", [(3, 3, 4, 6), (1, 1, 16, 8), (3, 3, 2, 40)])
def test_filter_orthogonality_matches_numpy(shape):
    rng = np.random.default_rng(sum(shape))
    # some small columns, where the 1e-4 in the normalisation matters
    w = rng.normal(size=shape) * rng.uniform(0.001, 1.0, size=shape[-1])
    w = w.astype(np.float32)
    for strength in (1e-5, 0.5):
        got = float(keras.ops.convert_to_numpy(
            FilterOrthogonality(strength)(keras.ops.convert_to_tensor(w))))
        np.testing.assert_allclose(got, np_orthogonality(w, strength), rtol=1e-5)
    assert FilterOrthogonality.from_config(FilterOrthogonality(0.5).get_config()).strength == 0.5


def test_orthogonal_filter_has_no_orthogonality_penalty():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(18, 6)))
    w = q.reshape(3, 3, 2, 6).astype(np.float32)
    got = float(keras.ops.convert_to_numpy(FilterOrthogonality(1.0)(keras.ops.convert_to_tensor(w))))
    # columns have norm 1, so normalised by sqrt(1 + 1e-4): diagonal 1/(1+1e-4)
    expected = 6 * (1.0 / (1.0 + 1e-4) - 1.0) ** 2 / 2.0
    np.testing.assert_allclose(got, expected, rtol=1e-2, atol=1e-10)
    np.testing.assert_allclose(expected, np_orthogonality(w, 1.0), rtol=1e-3)


def _terms(model):
    terms = regularization_terms(model)
    return {k: float(keras.ops.convert_to_numpy(v)) for k, v in terms.items()}


def _sum_losses(model):
    return float(sum(float(keras.ops.convert_to_numpy(l)) for l in model.losses))


def np_model_weight_decay(plain_convs, batch_norms):
    """NumPy weight decay over the plain-conv kernels and every BN gamma and beta."""
    reg = sum(np_weight_decay(layer.kernel.numpy(), WD) for layer in plain_convs)
    return reg + sum(np_weight_decay(layer.gamma.numpy(), WD)
                     + np_weight_decay(layer.beta.numpy(), WD) for layer in batch_norms)


def test_regularization_terms_tanh_cos():
    model = tiny("tanh_cos")
    randomize(model)
    plain = layers_of(model, PlainConv2D)
    bns = layers_of(model, TF1BatchNormalization)
    decoupled = layers_of(model, DecoupledConv2D)
    plain_names = sorted(layer.name for layer in plain)
    # plain convs are exactly the shortcuts (stages 2 and 3) and the score layer
    assert len(plain) == 3 and "score" in plain_names
    assert all("shortcut" in n or n == "score" for n in plain_names), plain_names
    # root + (first, second) x 3 units
    assert len(decoupled) == 7
    # one BN per conv but the score layer
    assert len(bns) == 7 + 2

    reg = np_model_weight_decay(plain, bns)
    orth = sum(np_orthogonality(layer.kernel.numpy(), ORTH) for layer in decoupled)

    terms = _terms(model)
    np.testing.assert_allclose(terms["reg"], reg, rtol=1e-5)
    np.testing.assert_allclose(terms["orth"], orth, rtol=1e-5)
    assert orth > 0
    np.testing.assert_allclose(terms["reg"] + terms["orth"], _sum_losses(model), rtol=1e-5)


def test_regularization_terms_baseline():
    model = tiny("baseline")
    randomize(model, seed=1)
    assert not layers_of(model, DecoupledConv2D)
    plain = layers_of(model, PlainConv2D)
    names = {layer.name for layer in plain}
    # root, 3 x (first, second), 2 shortcuts, score
    assert len(plain) == 1 + 6 + 2 + 1
    assert any("root" in n for n in names) and any("first" in n for n in names)
    assert any("second" in n for n in names)
    bns = layers_of(model, TF1BatchNormalization)
    assert len(bns) == 9

    reg = np_model_weight_decay(plain, bns)
    terms = _terms(model)
    assert terms["orth"] == 0.0
    np.testing.assert_allclose(terms["reg"], reg, rtol=1e-5)
    np.testing.assert_allclose(terms["reg"] + terms["orth"], _sum_losses(model), rtol=1e-5)


def test_regularization_terms_linear_sqcos_wo_bn():
    model = tiny("linear_sqcos_wo_bn")
    randomize(model, seed=2)
    assert not layers_of(model, TF1BatchNormalization)
    plain = layers_of(model, PlainConv2D)
    assert sorted(layer.name for layer in plain)[-1] == "score" and len(plain) == 3
    decoupled = layers_of(model, DecoupledConv2D)
    assert len(decoupled) == 7

    reg = sum(np_weight_decay(layer.kernel.numpy(), WD) for layer in plain)
    orth = sum(np_orthogonality(layer.kernel.numpy(), ORTH) for layer in decoupled)
    terms = _terms(model)
    np.testing.assert_allclose(terms["reg"], reg, rtol=1e-5)
    np.testing.assert_allclose(terms["orth"], orth, rtol=1e-5)
    np.testing.assert_allclose(terms["reg"] + terms["orth"], _sum_losses(model), rtol=1e-5)


# --------------------------------------------------------------------------------------
# Optimisers.

GRADS = [np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([1.0, -3.0, 0.1])]
W0 = [np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([0.0, 0.3, -0.2])]
STEPS = 6


def _grads_at(step):
    # fixed, but step-dependent, gradients
    return [g * (1.0 + 0.5 * step) * (-1.0) ** step for g in GRADS]


def _run_optimizer(optimizer, steps=STEPS):
    variables = [keras.Variable(w.astype(np.float32)) for w in W0]
    for i in range(steps):
        grads = [keras.ops.convert_to_tensor(g.astype(np.float32)) for g in _grads_at(i)]
        optimizer.apply(grads, variables)
    return [v.numpy().astype(np.float64) for v in variables]


def _np_tf1_momentum(lrs, momentum=0.9):
    w = [x.copy() for x in W0]
    acc = [np.zeros_like(x) for x in W0]
    for i, lr in enumerate(lrs):
        for j, g in enumerate(_grads_at(i)):
            acc[j] = momentum * acc[j] + g
            w[j] = w[j] - lr * acc[j]
    return w


def test_tf1_momentum_matches_numpy_across_a_rate_drop():
    schedule = step_schedule(0.1, [3])
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01, 0.01]  # update i = 3 uses the new rate
    expected = _np_tf1_momentum(lrs)
    got = _run_optimizer(TF1Momentum(learning_rate=schedule, momentum=0.9))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)


def test_keras_sgd_momentum_differs_across_the_drop():
    """Keras SGD keeps lr * grad in its velocity: not TF1's momentum after a drop."""
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01, 0.01]
    expected = _np_tf1_momentum(lrs)
    # before the drop both are the same ...
    before = _run_optimizer(keras.optimizers.SGD(learning_rate=step_schedule(0.1, [3]),
                                                 momentum=0.9), steps=3)
    for g, e in zip(before, _np_tf1_momentum(lrs[:3])):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)
    # ... after it, they are not
    sgd = _run_optimizer(keras.optimizers.SGD(learning_rate=step_schedule(0.1, [3]),
                                              momentum=0.9))
    assert max(np.abs(s - e).max() for s, e in zip(sgd, expected)) > 1e-2


def test_tf1_momentum_config_round_trip():
    optimizer = TF1Momentum(learning_rate=step_schedule(0.1, [3]), momentum=0.8)
    config = optimizer.get_config()
    assert config["momentum"] == 0.8
    clone = TF1Momentum.from_config(config)
    assert isinstance(clone, TF1Momentum) and clone.momentum == 0.8
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, TF1Momentum) and restored.momentum == 0.8
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01, 0.01]
    expected = _np_tf1_momentum(lrs, momentum=0.8)
    for opt in (clone, restored):
        for g, e in zip(_run_optimizer(opt), expected):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)
    # a plain float rate too
    clone = TF1Momentum.from_config(TF1Momentum(learning_rate=0.05, momentum=0.9).get_config())
    for g, e in zip(_run_optimizer(clone, steps=3), _np_tf1_momentum([0.05] * 3)):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)


def test_cifar_optimizer_is_tf1_adam():
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    optimizer = cifar_optimizer(lr)
    assert optimizer.epsilon == eps
    steps = 3
    w = [x.copy() for x in W0]
    m = [np.zeros_like(x) for x in W0]
    v = [np.zeros_like(x) for x in W0]
    for t in range(1, steps + 1):
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for j, g in enumerate(_grads_at(t - 1)):
            m[j] = b1 * m[j] + (1 - b1) * g
            v[j] = b2 * v[j] + (1 - b2) * g * g
            w[j] = w[j] - lr_t * m[j] / (np.sqrt(v[j]) + eps)
    got = _run_optimizer(optimizer, steps=steps)
    for g, e, w0 in zip(got, w, W0):
        np.testing.assert_allclose(g, e, rtol=1e-5)
        # the displacement itself (what the optimiser computes), at float32 resolution
        np.testing.assert_allclose(g - w0, e - w0, rtol=2e-3, atol=1e-8)


def test_cifar_optimizer_epsilon_matters():
    """A tiny gradient makes 1e-8 vs Keras's default 1e-7 visible."""
    g = np.full((3,), 1e-7)
    variables = [keras.Variable(np.zeros(3, np.float32))]
    cifar_optimizer(1e-3).apply([keras.ops.convert_to_tensor(g.astype(np.float32))], variables)
    # t = 1: m = 0.1 g, v = 0.001 g^2, lr_t = lr sqrt(0.001) / 0.1
    lr_t = 1e-3 * np.sqrt(1 - 0.999) / (1 - 0.9)
    expected = -lr_t * (0.1 * g) / (np.sqrt(0.001 * g * g) + 1e-8)
    np.testing.assert_allclose(variables[0].numpy(), expected, rtol=1e-4)
    keras_default = -lr_t * (0.1 * g) / (np.sqrt(0.001 * g * g) + 1e-7)
    assert np.abs(variables[0].numpy() - keras_default).max() > 1e-2 * np.abs(expected).max()


# --------------------------------------------------------------------------------------
# Schedules.


def _lr(schedule, i):
    return float(keras.ops.convert_to_numpy(schedule(i)))


@pytest.mark.parametrize("i,expected", [
    (0, 1e-3), (1, 1e-3), (19999, 1e-3), (20000, 1e-4), (29999, 1e-4), (30000, 1e-5),
    (37499, 1e-5), (37500, 1e-6), (42499, 1e-6)])
def test_cifar_schedule(i, expected):
    np.testing.assert_allclose(_lr(cifar_schedule(1e-3), i), expected, rtol=1e-6)


@pytest.mark.parametrize("i,expected", [
    (0, 0.1), (199999, 0.1), (200000, 0.01), (374999, 0.01), (375000, 1e-3),
    (549999, 1e-3), (550000, 1e-4), (700000, 1e-4)])
def test_imagenet_schedule(i, expected):
    np.testing.assert_allclose(_lr(imagenet_schedule(0.1), i), expected, rtol=1e-6)


def test_schedule_is_what_the_optimizer_uses():
    """optimizer.iterations == i while update i (0-based) is applied."""
    optimizer = TF1Momentum(learning_rate=step_schedule(1.0, [2]), momentum=0.0)
    variable = keras.Variable(np.zeros(1, np.float32))
    deltas = []
    for _ in range(4):
        before = variable.numpy().copy()
        optimizer.apply([keras.ops.ones((1,))], [variable])
        deltas.append(float((before - variable.numpy())[0]))
    np.testing.assert_allclose(deltas, [1.0, 1.0, 0.1, 0.1], rtol=1e-6)


# --------------------------------------------------------------------------------------
# Weight projection.


def test_projection_due():
    due = [i for i in range(0, 1003) if projection_due(i)]
    assert due == [101, 201, 301, 401, 501, 601, 701, 801, 901, 1001]
    assert not projection_due(1) and not projection_due(100) and projection_due(100001)
    # accepts a Keras variable (optimizer.iterations)
    assert projection_due(keras.Variable(201, dtype="int64"))


def test_projection_due_tensor_matches_the_host_rule():
    from dcnet_keras.callbacks import projection_due_tensor

    iterations = np.arange(0, 1003, dtype=np.int64)
    due = keras.ops.convert_to_numpy(projection_due_tensor(iterations))
    assert list(iterations[due]) == [i for i in range(0, 1003) if projection_due(i)]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TrainStep is TensorFlow's")
def test_train_step_projects_in_the_graph_after_update_101():
    """With learning rate 0 an update changes nothing, so the filters after the update
    that makes iterations 101 are exactly the projection of those before, and after
    the one that makes 102 they are unchanged."""
    from dcnet_keras.train_step import TrainStep

    model = _tiny_projection_model()
    randomize(model, seed=5)
    inputs = keras.Input((8, 8, 3))
    scored = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(model(inputs)))
    optimizer = keras.optimizers.SGD(0.0)
    step = TrainStep(scored, optimizer)
    optimizer.iterations.assign(100)
    decoupled = [model.get_layer("inner").get_layer("dec"), model.get_layer("outer_dec")]
    weighted = model.get_layer("inner").get_layer("weighted")
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    y = np.array([0, 1], np.int32)

    def kernels():
        return [layer.kernel.numpy().copy() for layer in decoupled + [weighted]]

    before = kernels()
    step(x.copy(), y)  # update 101
    after = kernels()
    for b, a in zip(before[:2], after[:2]):
        np.testing.assert_allclose(a, np_project(b), rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(after[2], before[2])  # weighted: never projected
    step(x.copy(), y)  # update 102
    for a, b in zip(kernels(), after):
        np.testing.assert_array_equal(a, b)


def _tiny_projection_model():
    inputs = keras.Input((8, 8, 3))
    x = DecoupledConv2D(4, 3, magnitude="tanh", angular="cos", name="dec")(inputs)
    x = DecoupledConv2D(5, 3, magnitude="tanh", angular="cos", weighted=True,
                        name="weighted")(x)
    x = PlainConv2D(6, 1, weight_decay=WD, name="plain")(x)
    inner = keras.Model(inputs, x, name="inner")
    outer_in = keras.Input((8, 8, 3))
    y = inner(outer_in)
    y = DecoupledConv2D(3, 1, magnitude="linear", angular="sqcos", name="outer_dec")(y)
    return keras.Model(outer_in, y)


def test_project_weights_direct():
    model = _tiny_projection_model()
    randomize(model, seed=4)
    inner = model.get_layer("inner")
    layers = {
        "dec": inner.get_layer("dec"), "weighted": inner.get_layer("weighted"),
        "plain": inner.get_layer("plain"), "outer_dec": model.get_layer("outer_dec")}
    # make some channels small, where the 1e-4 matters
    k = layers["dec"].kernel.numpy()
    k[..., 0] *= 1e-3
    layers["dec"].kernel.assign(k)
    before = {name: layer.kernel.numpy().copy() for name, layer in layers.items()}
    project_weights(model)
    for name in ("dec", "outer_dec"):
        after = layers[name].kernel.numpy()
        np.testing.assert_allclose(after, np_project(before[name]), rtol=1e-5, atol=1e-8)
        n = channel_norms(before[name])
        np.testing.assert_allclose(channel_norms(after), n / np.sqrt(n ** 2 + 1e-4), rtol=1e-5)
    for name in ("weighted", "plain"):
        np.testing.assert_array_equal(layers[name].kernel.numpy(), before[name])
    with pytest.raises(ValueError):
        layers["weighted"].project_filter()


class _KernelRecorder(keras.callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = set(at)
        self.kernels = {}

    def on_train_batch_end(self, batch, logs=None):
        it = int(self.model.optimizer.iterations.numpy())
        if it in self.at:
            self.kernels[it] = [layer.kernel.numpy().copy()
                                for layer in layers_of(self.model, DecoupledConv2D)]


def test_weight_projection_callback_in_fit():
    keras.utils.set_random_seed(0)
    model = tiny("tanh_cos")
    model.compile(optimizer=cifar_optimizer(1e-3), loss=dcnet_cross_entropy,
                  steps_per_execution=1)
    rng = np.random.default_rng(0)
    n, batch = 70, 2  # 35 steps per epoch, 3 epochs: iterations 1 .. 105
    images = rng.integers(0, 256, size=(n, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, size=(n,)).astype(np.int32)
    checkpoints = (1, 100, 101, 102)
    pre = _KernelRecorder(checkpoints)
    post = _KernelRecorder(checkpoints)
    model.fit(images, labels, batch_size=batch, epochs=3, shuffle=False, verbose=0,
              callbacks=[pre, WeightProjection(), post])
    assert int(model.optimizer.iterations.numpy()) == 105
    assert set(pre.kernels) == set(post.kernels) == set(checkpoints)
    # projected exactly after the 101st update, per output channel, with the 1e-4
    for before, after in zip(pre.kernels[101], post.kernels[101]):
        np.testing.assert_allclose(after, np_project(before), rtol=1e-5, atol=1e-8)
        n_before = channel_norms(before)
        np.testing.assert_allclose(channel_norms(after), n_before / np.sqrt(n_before ** 2 + 1e-4),
                                   rtol=1e-5)
        # the initial filters (N(0, sqrt(2/fan_in))) are far from unit norm
        assert np.abs(n_before - 1.0).max() > 1e-2
    # and not after any other update
    for it in (1, 100, 102):
        for before, after in zip(pre.kernels[it], post.kernels[it]):
            np.testing.assert_array_equal(after, before)


# --------------------------------------------------------------------------------------
# One original training iteration.


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="TrainStep is TensorFlow code")
def test_train_step():
    from dcnet_keras.train_step import TrainStep

    keras.utils.set_random_seed(1)
    model = tiny("tanh_cos")
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(8, 32, 32, 3)).astype(np.float32)

    before = [w.numpy().copy() for w in model.trainable_weights]
    # the training-mode forward does not depend on the moving averages, so this is
    # the forward the step will do
    logits = keras.ops.convert_to_numpy(model(images, training=True)).astype(np.float64)
    # labels: right for the first half, wrong for the rest, so acc must be 0.5 exactly
    # when taken from this forward (not from one after the update, nor in inference mode)
    labels = np.where(np.arange(8) < 4, np.argmax(logits, -1), np.argmin(logits, -1))
    labels = labels.astype(np.int32)
    reg = sum(np_weight_decay(layer.kernel.numpy(), WD)
              for layer in layers_of(model, PlainConv2D))
    reg += sum(np_weight_decay(layer.gamma.numpy(), WD) + np_weight_decay(layer.beta.numpy(), WD)
               for layer in layers_of(model, TF1BatchNormalization))
    orth = sum(np_orthogonality(layer.kernel.numpy(), ORTH)
               for layer in layers_of(model, DecoupledConv2D))

    # a large rate, so that a forward after the update would give other predictions
    step = TrainStep(model, cifar_optimizer(0.1))
    out = {k: float(v.numpy()) for k, v in step(images, labels).items()}
    assert set(out) == {"fit", "reg", "orth", "loss", "top1", "top5"}
    np.testing.assert_allclose(out["loss"], out["fit"] + out["reg"] + out["orth"], rtol=1e-6)
    np.testing.assert_allclose(out["fit"], np_cross_entropy(labels, logits), rtol=1e-5)
    np.testing.assert_allclose(out["reg"], reg, rtol=1e-5)
    np.testing.assert_allclose(out["orth"], orth, rtol=1e-5)
    assert 0.0 <= out["top1"] <= 1.0
    np.testing.assert_allclose(out["top1"], 0.5)
    # top-5 of 10 classes: a NumPy count over the same forward's logits
    top5 = np.argsort(-logits, axis=1)[:, :5]
    np.testing.assert_allclose(out["top5"], np.mean([l in t for l, t in zip(labels, top5)]))

    after = [w.numpy() for w in model.trainable_weights]
    changed = [not np.array_equal(a, b) for a, b in zip(after, before)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]
