"""FGSM and BIM (:mod:`dcnet_keras.attacks`), the input gradient and ``python -m
dcnet_keras.attack``, on the TensorFlow and the JAX backend.

The references are written here, never outputs of the code under test: for a linear
softmax model ``logits = W^T x + b`` the loss gradient in closed form, in float64 NumPy,

    d mean_n l_n / d x_n = W (d l_n / d logits_n) / N,

with ``d l / d z = softmax(z) - onehot(y)`` for the plain cross entropy and, for the
model's own loss ``-sum_k t_k log(p_k + 1e-4)`` (``t = 0.99 onehot + 0.01 / K``),
``d l / d z = p * sum(a) - a`` with ``a_k = t_k p_k / (p_k + 1e-4)``; FGSM and BIM then
as the formulas say (``clip(x + eps sign(g), 0, 255)``, BIM's box around ``x``).  For a
CNN-9 the gradient comes from ``tests/backend_gradients.py`` (the backend's autodiff of
``sum(logits * c)`` with the NumPy cotangent ``c = d L / d logits``), not from
:func:`dcnet_keras.input_gradients.input_gradient`.  The test files chosen for the JAX
re-run are run by ``tests/test_jax_backend.py``; the TensorFlow-only tests (``tf.function``,
SavedModels, checkpoints) skip there.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from dcnet_keras import attack, attacks
from dcnet_keras.input_gradients import input_gradient
from dcnet_keras.models import build_model
from assertions import cli_error_line, one_line_error
from backend_gradients import layer_gradients

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason=f"TensorFlow only (tf.function, SavedModels and training checkpoints are "
           f"TensorFlow's); the backend is {BACKEND!r}")
REPO_ROOT = Path(__file__).resolve().parent.parent
#: float32 round-off allowed on |x_adv - x| <= eps (x up to 255: one ulp is 1.5e-5).
ROUND_OFF = 1e-4


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# --------------------------------------------------------------------------- NumPy references


def np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_dcnet_loss_grad(labels, logits):
    """``d l_n / d logits_n`` of ``-sum_k t_k log(p_k + 1e-4)``, per example (float64)."""
    p = np_softmax(logits)
    k = p.shape[1]
    t = 0.99 * np.eye(k)[labels] + 0.01 / k
    a = t * p / (p + 1e-4)
    return p * a.sum(axis=1, keepdims=True) - a


def np_plain_loss_grad(labels, logits):
    """``d l_n / d logits_n`` of ``-log softmax(logits_n)[y_n]``: ``softmax - onehot``."""
    p = np_softmax(logits)
    return p - np.eye(p.shape[1])[labels]


def np_top1(labels, logits):
    """Hits as ``in_top_k(.., 1)`` counts them: no logit above the label's."""
    logits = np.asarray(logits, np.float64)
    label_logit = logits[np.arange(len(labels)), labels]
    return int(np.sum(np.sum(logits > label_logit[:, None], axis=1) == 0))


class Linear:
    """``logits = (scale * x + shift).reshape(N, -1) @ W + b``, in NumPy and as Keras."""

    def __init__(self, W, b, scale=1.0, shift=0.0):
        self.W, self.b = np.asarray(W, np.float64), np.asarray(b, np.float64)
        self.scale, self.shift = scale, shift

    def logits(self, x):
        x = np.asarray(x, np.float64)
        return (self.scale * x + self.shift).reshape(len(x), -1) @ self.W + self.b

    def input_grad(self, x, labels, loss_grad):
        """``d mean_n l_n / d x`` in closed form."""
        dz = loss_grad(labels, self.logits(x)) / len(x)
        return (self.scale * dz @ self.W.T).reshape(x.shape)

    def fgsm(self, x, labels, eps, loss_grad):
        g = self.input_grad(x, labels, loss_grad)
        return np.clip(x + eps * np.sign(g), 0, 255), np.abs(g).min()

    def bim(self, x, labels, eps, step, iterations, loss_grad):
        """BIM and the smallest |gradient| met on the way (the sign's margin)."""
        xt, margin = np.asarray(x, np.float64), np.inf
        for _ in range(iterations):
            g = self.input_grad(xt, labels, loss_grad)
            margin = min(margin, np.abs(g).min())
            xt = np.clip(np.clip(xt + step * np.sign(g), x - eps, x + eps), 0, 255)
        return xt, margin


def plain_cross_entropy(labels, logits):
    """``-log softmax(logits)[label]`` per example (keras.ops): the attack ``loss=``."""
    labels = keras.ops.reshape(keras.ops.cast(labels, "int32"), (-1, 1))
    return -keras.ops.take_along_axis(keras.ops.log_softmax(logits, axis=-1), labels, axis=1)[:, 0]


def linear_keras(shape, W, b, scale=None, shift=0.0):
    layers = [keras.Input(shape)]
    if scale is not None:
        layers.append(keras.layers.Rescaling(scale, offset=shift))
    layers += [keras.layers.Flatten(), keras.layers.Dense(W.shape[1])]
    model = keras.Sequential(layers)
    model.layers[-1].set_weights([W.astype(np.float32), b.astype(np.float32)])
    return model


def images_and_labels(n, shape=(8, 8, 3), classes=10, seed=0):
    """Integer grey levels 0..255 (many within 8 of 0 or 255: the clip matters)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n,) + shape).astype(np.float32),
            rng.integers(0, classes, n).astype(np.int32))


@pytest.fixture(scope="module")
def linear():
    """A random linear softmax model on 8x8x3 with moderate logits (std ~3: the softmax
    neither saturates nor underflows) and its NumPy twin.  Seed 36: every |gradient| the
    exact tests meet (of the batch mean) is above 1e-6, so no float32 sign is in doubt."""
    rng = np.random.default_rng(36)
    W = rng.normal(0.0, 3e-3, (192, 10))
    b = -127.5 * W.sum(axis=0)  # centres the logits of mid-grey images
    W, b = W.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
    return linear_keras((8, 8, 3), W, b), Linear(W, b)


def tiny_cnn9(seed, x):
    """A CNN-9 at tiny width, its moving averages set by a training forward on ``x``
    (at zero, an untrained tanh model's input gradient is 0/0)."""
    keras.utils.set_random_seed(seed)
    model = build_model("cnn9", variant="tanh_cos", widths=(4, 4, 4), fc_width=4,
                        num_classes=10)
    model(np.asarray(x, np.float32), training=True)
    return model


@pytest.fixture(scope="module")
def cnn9():
    x, y = images_and_labels(8, (32, 32, 3))
    return tiny_cnn9(0, x), x, y


def cnn9_reference_fgsm(model, x, y, eps):
    """FGSM of the default (plain softmax) loss with the backend's autodiff of
    ``sum(logits * c)``."""
    logits = to_numpy(model(x, training=False))
    cotangent = (np_plain_loss_grad(y, logits) / len(x)).astype(np.float32)
    _, (g, *_) = layer_gradients(model, x, False, cotangent)
    return np.clip(x + eps * np.sign(g), 0, 255), np.abs(g)


# --------------------------------------------------------------------------- the gradient


def test_input_gradient_of_a_closed_form():
    x = np.linspace(-2.0, 3.0, 24, dtype=np.float32).reshape(2, 3, 4)
    g = to_numpy(input_gradient(lambda v: keras.ops.sum(v ** 3) / 3.0 + 5.0, x))
    np.testing.assert_allclose(g, x.astype(np.float64) ** 2, rtol=1e-6)
    assert g.shape == x.shape
    # a loss that ignores x: gradient 0
    assert not to_numpy(input_gradient(lambda v: keras.ops.convert_to_tensor(2.0), x)).any()


def test_input_gradient_errors(monkeypatch):
    message = one_line_error(ValueError, input_gradient, lambda v: v * 2.0, np.ones((2, 3)))
    assert message == "loss_fn: expected a scalar loss, received shape (2, 3)"
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    message = one_line_error(ValueError, input_gradient, keras.ops.sum, np.ones(3))
    assert "'numpy'" in message and "tensorflow, jax, torch" in message


# --------------------------------------------------------------------------- 1. epsilon 0


@pytest.mark.parametrize("name", attacks.ATTACKS)
def test_epsilon_zero_changes_nothing(linear, name):
    model, reference = linear
    x, y = images_and_labels(20)
    y[::2] = np.argmax(reference.logits(x), axis=1)[::2]  # some right, some wrong
    crafted = to_numpy(attacks.craft(name, model, x, y, 0.0, 1.0, 3))
    assert crafted.dtype == np.float32 and np.array_equal(crafted, x)
    # the formula itself: eps 0 moves nothing (the images are in [0, 255])
    assert np.array_equal(to_numpy(attacks.fgsm(model, x, y, 0.0)), x)
    assert np.array_equal(to_numpy(attacks.bim(model, x, y, 0.0, 1.0, 2)), x)
    batches = [(x[:16], y[:16]), (x[16:], y[16:])]
    result = attacks.attack_accuracy(model, batches, name, 0.0, 1.0, 3)
    clean = np_top1(y, reference.logits(x)) / len(x)
    assert result == {"clean": clean, "adversarial": clean, "images": 20}
    assert 0 < clean < 1


# --------------------------------------------------------------------------- 2. linear FGSM


@pytest.mark.parametrize("eps", [0.5, 3.0, 8.0])
@pytest.mark.parametrize("loss", ["plain", "default", "model_loss"])
def test_fgsm_on_a_linear_softmax_matches_numpy(linear, eps, loss):
    model, reference = linear
    x, y = images_and_labels(4)
    loss_fn, loss_grad = {"plain": (plain_cross_entropy, np_plain_loss_grad),
                          "default": (None, np_plain_loss_grad),
                          "model_loss": ("training", np_dcnet_loss_grad)}[loss]
    expected, margin = reference.fgsm(x, y, eps, loss_grad)
    assert margin > 1e-6  # no sign of the reference is in doubt: exact equality
    got = to_numpy(attacks.fgsm(model, x, y, eps, loss=loss_fn))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert np.any(got == 0) and np.any(got == 255)  # the clip was exercised
    np.testing.assert_array_equal(
        to_numpy(attacks.craft("fgsm", model, x, y, eps, loss=loss_fn)), got)


def test_bim_on_a_linear_softmax_matches_numpy(linear):
    model, reference = linear
    x, y = images_and_labels(4, seed=2)
    expected, margin = reference.bim(x, y, 8.0, 3.0, 5, np_plain_loss_grad)
    assert margin > 1e-6
    got = to_numpy(attacks.bim(model, x, y, 8.0, step=3.0, iterations=5,
                               loss=plain_cross_entropy))
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert np.abs(got - x).max() == 8.0  # 5 steps of 3 went past eps: the box held them


# --------------------------------------------------------------------------- 3. the box


@pytest.mark.parametrize("eps", [1.0, 8.0, 20.0])
def test_adversarial_images_stay_in_the_boxes(linear, cnn9, eps):
    model, _ = linear
    x8, y8 = images_and_labels(16, seed=3)
    cases = [(model, x8, y8), (lambda v: cnn9[0](v, training=False), cnn9[1], cnn9[2])]
    for logits_fn, x, y in cases:
        for crafted in (attacks.fgsm(logits_fn, x, y, eps),
                        attacks.bim(logits_fn, x, y, eps, step=eps / 3, iterations=5),
                        attacks.craft("bim", logits_fn, x, y, eps, 2.5, 4)):
            crafted = to_numpy(crafted)
            assert crafted.shape == x.shape and crafted.dtype == np.float32
            assert np.abs(crafted - x).max() <= eps + ROUND_OFF
            assert crafted.min() >= 0 and crafted.max() <= 255
            assert np.abs(crafted - x).max() >= min(eps, 1.0)  # the attack did move pixels


def test_cnn9_fgsm_matches_the_backends_autodiff(cnn9):
    model, x, y = cnn9
    expected, magnitude = cnn9_reference_fgsm(model, x, y, 8.0)
    got = to_numpy(attacks.fgsm(lambda v: model(v, training=False), x, y, 8.0))
    differ = got != expected.astype(np.float32)
    # two autodiff paths of one graph: a sign may flip only where the gradient is ~0
    assert np.all(magnitude[differ] <= 1e-6 * magnitude.max())
    assert differ.mean() < 1e-3


# --------------------------------------------------------------------------- 4. BIM(1) = FGSM


def test_bim_one_step_of_epsilon_is_fgsm(linear, cnn9):
    model, _ = linear
    x8, y8 = images_and_labels(16, seed=4)
    for logits_fn, x, y in [(model, x8, y8),
                            (lambda v: cnn9[0](v, training=False), cnn9[1], cnn9[2])]:
        for eps in (2.0, 8.0):
            np.testing.assert_array_equal(
                to_numpy(attacks.bim(logits_fn, x, y, eps, step=eps, iterations=1)),
                to_numpy(attacks.fgsm(logits_fn, x, y, eps)))
            np.testing.assert_array_equal(
                to_numpy(attacks.craft("bim", logits_fn, x, y, eps, eps, 1)),
                to_numpy(attacks.craft("fgsm", logits_fn, x, y, eps)))


# --------------------------------------------------------------------------- 5. a trained model


def two_class_images(n, seed):
    """Two classes of 8x8x3 images: grey 127.5 -/+ 4 plus pixel noise (sd 30), rounded and
    clipped; separable by their means, but only 4 grey levels from the middle."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.int32)
    offset = np.where(labels == 1, 4.0, -4.0)[:, None, None, None]
    images = np.rint(127.5 + offset + rng.normal(0.0, 30.0, (n, 8, 8, 3)))
    return np.clip(images, 0, 255).astype(np.float32), labels


def train_linear(seed, images, labels):
    """A linear classifier on ``(x - 127.5) / 128`` trained with the model's own loss."""
    from dcnet_keras.losses import DCNetCrossEntropy

    keras.utils.set_random_seed(seed)
    W = np.random.default_rng(seed).normal(0.0, 1e-3, (192, 2))
    model = linear_keras((8, 8, 3), W, np.zeros(2), 1 / 128, -127.5 / 128)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=DCNetCrossEntropy())
    model.fit(images, labels, batch_size=64, epochs=5, verbose=0)
    dense = model.layers[-1]
    return model, Linear(to_numpy(dense.kernel), to_numpy(dense.bias), 1 / 128, -127.5 / 128)


@pytest.fixture(scope="module")
def trained():
    """Two linear models trained on different draws (seeds 0, 1), and test images."""
    return {"a": train_linear(0, *two_class_images(512, 10)),
            "b": train_linear(1, *two_class_images(512, 11)),
            "test": two_class_images(64, 12)}


def numpy_attack_accuracy(target, source, x, y, eps):
    """``(clean, FGSM)`` top-1 of ``target`` with the images crafted on ``source``."""
    adversarial, _ = source.fgsm(x, y, eps, np_plain_loss_grad)
    return np_top1(y, target.logits(x)) / len(y), np_top1(y, target.logits(adversarial)) / len(y)


def test_fgsm_lowers_a_trained_models_accuracy(trained):
    (model, reference), (x, y) = trained["a"], trained["test"]
    batches = [(x[:48], y[:48]), (x[48:], y[48:])]
    white = attacks.attack_accuracy(model, batches, "fgsm", 8.0, 1.0, 1)
    clean, adversarial = numpy_attack_accuracy(reference, reference, x, y, 8.0)
    assert clean > 0.8 and adversarial < clean - 0.5  # the attack works on this model
    assert white == {"clean": clean, "adversarial": adversarial, "images": 64}
    bim = attacks.attack_accuracy(model, batches, "bim", 8.0, 2.0, 6)
    assert bim["clean"] == clean and bim["adversarial"] < clean - 0.5
    # black-box: crafted on b, classified by a (the two learnt the same direction)
    model_b, reference_b = trained["b"]
    black = attacks.attack_accuracy(model, batches, "fgsm", 8.0, 1.0, 1, source_fn=model_b)
    assert black["clean"] == clean
    assert black["adversarial"] == numpy_attack_accuracy(reference, reference_b, x, y, 8.0)[1]
    assert black["adversarial"] < clean - 0.5


def test_attack_accuracy_counts_every_image_once(linear):
    model, reference = linear
    x, y = images_and_labels(36, seed=5)
    sizes = [16, 4, 16]  # few shapes: JAX compiles every op once per shape
    starts = np.cumsum([0] + sizes)
    batches = [(x[a:b], y[a:b]) for a, b in zip(starts[:-1], starts[1:])]
    expected_adversarial, _ = reference.fgsm(x, y, 8.0, np_plain_loss_grad)
    result = attacks.attack_accuracy(model, iter(batches), "fgsm", 8.0, 1.0, 1)
    # per-batch means leave each image's sign as the whole batch's would
    assert result == {"clean": np_top1(y, reference.logits(x)) / 36,
                      "adversarial": np_top1(y, reference.logits(expected_adversarial)) / 36,
                      "images": 36}
    message = one_line_error(ValueError, attacks.attack_accuracy, model, [], "fgsm", 8.0, 1.0, 1)
    assert message.startswith("batches: no images")


def test_count_correct_counts_ties_and_non_finite_rows_as_misses():
    logits = np.array([[1.0, 3.0, 3.0], [2.0, 1.0, 0.0], [np.nan, 1.0, 0.0],
                       [0.0, np.nan, 5.0], [0.0, -np.inf, 5.0], [0.0, 1.0, 2.0],
                       [4.0, 4.0, 4.0]], np.float32)
    labels = np.array([2, 0, 0, 2, 2, 0, 1])
    # a tie with another class is a miss, and so is a row with a non-finite logit: only
    # row 1 (label 0, the one largest logit) is a hit
    assert attacks.count_correct(labels, logits) == 1
    assert attacks.count_correct(labels.reshape(-1, 1), logits) == 1


# --------------------------------------------------------------------------- arguments


class Untouchable:
    """A logits function or a batch iterable that fails the test when used."""

    def __call__(self, *args):
        raise AssertionError("work was done before the arguments were checked")

    def __iter__(self):
        raise AssertionError("batches were read before the arguments were checked")


@pytest.mark.parametrize("kwargs, expected", [
    (dict(attack="pgd"), "attack: expected one of 'fgsm', 'bim', received 'pgd'"),
    (dict(epsilon=-1.0), "epsilon: expected a finite number >= 0"),
    (dict(epsilon=float("nan")), "epsilon: expected a finite number >= 0"),
    (dict(epsilon=float("inf")), "epsilon: expected a finite number >= 0"),
    (dict(epsilon=True), "epsilon: expected a finite number >= 0"),
    (dict(step=0.0), "step: expected a finite positive number"),
    (dict(step=-1.0), "step: expected a finite positive number"),
    (dict(iterations=0), "iterations: expected a positive integer, received 0"),
    (dict(iterations=2.0), "iterations: expected a positive integer, received 2.0"),
    (dict(iterations=True), "iterations: expected a positive integer, received True"),
])
def test_bad_arguments_are_one_line_errors_before_any_work(kwargs, expected):
    arguments = {**dict(attack="fgsm", epsilon=8.0, step=1.0, iterations=10), **kwargs}
    x, y = images_and_labels(2)
    for run in (lambda: attacks.craft(arguments["attack"], Untouchable(), x, y,
                                      arguments["epsilon"], arguments["step"],
                                      arguments["iterations"]),
                lambda: attacks.attack_accuracy(Untouchable(), Untouchable(), **arguments)):
        message = one_line_error(ValueError, run)
        assert message.startswith(expected), message
        value = next(iter(kwargs.values()))
        assert f"received {value!r}" in message
    if "epsilon" in kwargs:
        message = one_line_error(ValueError, attacks.fgsm, Untouchable(), x, y,
                                 kwargs["epsilon"])
        assert message.startswith(expected)


def test_bad_functions_are_one_line_errors():
    x, y = images_and_labels(2)
    message = one_line_error(ValueError, attacks.craft, "fgsm", "model", x, y, 8.0)
    assert message == "logits_fn: expected a function images -> logits, received 'model'"
    message = one_line_error(ValueError, attacks.craft, "fgsm", Untouchable(), x, y, 8.0,
                             loss="ce")
    assert message.startswith("loss: expected one of 'softmax', 'training'"), message
    message = one_line_error(ValueError, attacks.craft, "fgsm", Untouchable(), x, y, 8.0,
                             loss=3)
    assert message.startswith("loss: expected a function (labels, logits)")
    message = one_line_error(ValueError, attacks.attack_accuracy, Untouchable(), [], "fgsm",
                             8.0, source_fn=3)
    assert message == "source_fn: expected a function images -> logits, received 3"


def test_constants():
    assert (attacks.DEFAULT_EPSILON, attacks.DEFAULT_BIM_STEP,
            attacks.DEFAULT_BIM_ITERATIONS, attacks.ATTACKS) == (8.0, 1.0, 10, ("fgsm", "bim"))


# --------------------------------------------------------------------------- 7. traced


def traced(function):
    """``function`` compiled: ``tf.function`` on TensorFlow, ``jax.jit`` on JAX."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    pytest.skip(f"no compiler for backend {BACKEND!r} here")


def test_fgsm_traced_equals_eager(linear):
    model, _ = linear
    x, y = images_and_labels(16, seed=6)
    for attack_fn in (lambda a, b: attacks.fgsm(model, a, b, 8.0),
                      lambda a, b: attacks.bim(model, a, b, 8.0, 3.0, 4)):
        np.testing.assert_array_equal(to_numpy(traced(attack_fn)(x, y)),
                                      to_numpy(attack_fn(x, y)))


@tensorflow_only
def test_fgsm_inside_a_tf_function_training_step():
    """As an adversarial training step calls it: the model in training mode, inside a
    ``tf.function`` with the outer tape over the weights; the images as eager gives them,
    and the weight gradient is that of the loss at the (constant) adversarial images."""
    import tensorflow as tf

    from dcnet_keras.losses import dcnet_cross_entropy

    x, y = images_and_labels(8, (32, 32, 3), seed=7)
    model = tiny_cnn9(3, x)
    training = lambda v: model(v, training=True)  # noqa: E731
    eager = to_numpy(attacks.fgsm(training, x, y, 8.0))

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            adversarial = attacks.fgsm(training, images, labels, 8.0)
            loss = dcnet_cross_entropy(labels, model(adversarial, training=True))
        return adversarial, tape.gradient(loss, model.trainable_variables)

    adversarial, grads = step(tf.constant(x), tf.constant(y))
    adversarial = to_numpy(adversarial)
    differ = adversarial != eager
    assert differ.mean() < 1e-3, differ.mean()  # graph vs eager round-off on ~0 gradients
    assert np.abs(adversarial - x).max() <= 8.0 + ROUND_OFF
    assert all(g is not None and np.isfinite(to_numpy(g)).all() for g in grads)
    with tf.GradientTape() as tape:
        loss = dcnet_cross_entropy(y, model(tf.constant(adversarial), training=True))
    for got, expected in zip(grads, tape.gradient(loss, model.trainable_variables)):
        np.testing.assert_allclose(to_numpy(got), to_numpy(expected), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- 6. the command


LINE = {"clean": re.compile(r"^clean: accuracy=(\d\.\d{4}) over (\d+) images$"),
        "attack": re.compile(r"^(fgsm|bim) eps=(\S+): accuracy=(\d\.\d{4}) over (\d+) images$")}


def run_cli(capsys, argv):
    result = attack.main(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2, lines
    clean, attacked = LINE["clean"].match(lines[0]), LINE["attack"].match(lines[1])
    assert clean and attacked, lines
    assert clean.group(1) == f"{result['clean']:.4f}"
    assert attacked.group(3) == f"{result['adversarial']:.4f}"
    assert int(clean.group(2)) == int(attacked.group(4)) == result["images"]
    return result, attacked.group(1), attacked.group(2)


def random_linear_cifar(seed):
    """A random linear model on 32x32x3 with moderate logits (std ~3 on the synthetic
    CIFAR images): about 1 in 10 right, and every right answer fragile."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 7e-4, (3072, 10))
    b = -127.5 * W.sum(axis=0)
    model = linear_keras((32, 32, 3), W, b)
    dense = model.layers[-1]
    return model, Linear(to_numpy(dense.kernel), to_numpy(dense.bias))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``a.keras``, ``b.keras`` (random linear models, with their NumPy twins) and a tiny
    CNN-9 ``cnn9.keras``."""
    folder = tmp_path_factory.mktemp("attack")
    models = {name: random_linear_cifar(seed) for name, seed in (("a", 20), ("b", 21))}
    for name, (model, _) in models.items():
        model.save(folder / f"{name}.keras")
    x, _ = images_and_labels(8, (32, 32, 3), seed=8)
    tiny_cnn9(4, x).save(folder / "cnn9.keras")
    return folder, {name: model for name, model in models.items()}


SYNTHETIC = ["--dataset", "cifar10", "--source", "synthetic", "--max_images", "64"]


def synthetic_test(n=64):
    """The first ``n`` images of what ``--dataset cifar10 --source synthetic`` reads."""
    from dcnet_keras.data.registry import get_dataset

    data = get_dataset("cifar10").open("synthetic")
    return data.test_images[:n].astype(np.float32), data.test_labels[:n]


def test_cli_white_and_black_box(capsys, saved):
    saved, models = saved
    x, y = synthetic_test()
    reference, reference_b = models["a"][1], models["b"][1]
    result, name, eps = run_cli(capsys, [str(saved / "a.keras"), "--attack", "fgsm",
                                         "--epsilon", "8"] + SYNTHETIC)
    clean, adversarial = numpy_attack_accuracy(reference, reference, x, y, 8.0)
    assert (name, eps) == ("fgsm", "8")
    assert result == {"clean": clean, "adversarial": adversarial, "images": 64}
    assert adversarial < clean
    result, _, _ = run_cli(capsys, [str(saved / "a.keras"), "--source_model",
                                    str(saved / "b.keras"), "--epsilon", "8", "--batch_size",
                                    "32"] + SYNTHETIC)
    assert result == {"clean": clean, "images": 64,
                      "adversarial": numpy_attack_accuracy(reference, reference_b, x, y, 8)[1]}
    result, name, eps = run_cli(capsys, [str(saved / "a.keras"), "--attack", "bim", "--epsilon",
                                         "2.5", "--step", "1", "--iterations", "3"] + SYNTHETIC)
    expected, _ = reference.bim(x, y, 2.5, 1.0, 3, np_plain_loss_grad)
    assert (name, eps) == ("bim", "2.5")
    assert result == {"clean": clean, "adversarial": np_top1(y, reference.logits(expected)) / 64,
                      "images": 64}


def test_cli_on_a_cnn9_keras_file(capsys, saved):
    saved, _ = saved
    x, y = synthetic_test(8)  # 8: the shapes of the cnn9 fixture (JAX compiles per shape)
    model = keras.models.load_model(saved / "cnn9.keras")
    expected, _ = cnn9_reference_fgsm(model, x, y, 8.0)
    result, _, _ = run_cli(capsys, [str(saved / "cnn9.keras"), "--dataset", "cifar10",
                                    "--source", "synthetic", "--max_images", "8"])  # default: fgsm, 8
    logits = lambda v: to_numpy(model(v, training=False))  # noqa: E731
    assert result == {"clean": np_top1(y, logits(x)) / 8,
                      "adversarial": np_top1(y, logits(expected.astype(np.float32))) / 8,
                      "images": 8}


@pytest.mark.parametrize("flags, expected", [
    (["--epsilon", "-1"], "error: --epsilon: expected a finite number >= 0"),
    (["--epsilon", "nan"], "error: --epsilon: expected a finite number >= 0"),
    (["--epsilon", "eight"], "error: --epsilon: expected a number, received 'eight'"),
    (["--step", "0"], "error: --step: expected a finite positive number"),
    (["--iterations", "2.5"], "error: --iterations: expected an integer, received '2.5'"),
    (["--iterations", "0"], "error: --iterations: expected a positive integer, received 0"),
    (["--batch_size", "0"], "error: --batch_size: expected a positive integer, received 0"),
    (["--max_images", "-3"], "error: --max_images: expected a positive integer, received -3"),
    (["--attack", "pgd"], "error: --attack: expected one of 'fgsm', 'bim', received 'pgd'"),
    (["--dataset", "imagenet"], "error: --dataset: expected one of 'cifar10', 'cifar100', "
                                "received 'imagenet'"),
])
def test_cli_bad_flags_are_one_line_errors_before_loading(tmp_path, flags, expected):
    # MODEL does not exist: the flag is reported first, so nothing was loaded
    message = cli_error_line(attack.main, [str(tmp_path / "none.keras")] + flags)
    assert message.startswith(expected), message
    if "received" not in expected:
        assert "received" in message


def test_cli_bad_models_are_one_line_errors(tmp_path, saved):
    saved, _ = saved
    missing = str(tmp_path / "missing.keras")
    message = cli_error_line(attack.main, [missing] + SYNTHETIC)
    assert message.startswith(f"error: model: nothing at {missing!r}")
    message = cli_error_line(attack.main, [str(saved / "a.keras"), "--source_model", missing]
                             + SYNTHETIC)
    assert message.startswith(f"error: --source_model: nothing at {missing!r}")
    message = cli_error_line(attack.main, [str(saved / "a.keras"), "--source_model",
                                           str(tmp_path)] + SYNTHETIC)
    assert message.startswith(f"error: --source_model: {str(tmp_path)!r} is a checkpoint "
                              "without model_spec.json")
    wide = linear_keras((32, 32, 3), np.zeros((3072, 100)), np.zeros(100))
    wide.save(tmp_path / "wide.keras")
    message = cli_error_line(attack.main, [str(saved / "a.keras"), "--source_model",
                                           str(tmp_path / "wide.keras")] + SYNTHETIC)
    assert message == (f"error: --source_model: {str(tmp_path / 'wide.keras')!r}: the model has "
                       "100 classes but dataset 'cifar10' has 10 (check --dataset, "
                       "--num_classes)")


@tensorflow_only
def test_cli_on_saved_models_and_a_run_folder(capsys, tmp_path, saved):
    """A SavedModel attacked white-box (gradients through its serving function), as the
    black-box target and source; a training run's folder with model_spec.json."""
    from dcnet_keras.export import write_model_spec
    from dcnet_keras.models import resolve
    from training_runs import save_training_checkpoint

    saved, models = saved
    x, y = synthetic_test()
    reference, reference_b = models["a"][1], models["b"][1]
    models["a"][0].export(str(tmp_path / "a_saved"), verbose=False)
    models["b"][0].export(str(tmp_path / "b_saved"), verbose=False)
    clean, adversarial = numpy_attack_accuracy(reference, reference, x, y, 8.0)
    result, _, _ = run_cli(capsys, [str(tmp_path / "a_saved")] + SYNTHETIC)
    assert result == {"clean": clean, "adversarial": adversarial, "images": 64}
    black = numpy_attack_accuracy(reference, reference_b, x, y, 8.0)[1]
    for target, source in (("a_saved", "b.keras"), ("a.keras", "b_saved")):
        folder = tmp_path if target.endswith("saved") else saved
        source_folder = tmp_path if source.endswith("saved") else saved
        result, _, _ = run_cli(capsys, [str(folder / target), "--source_model",
                                        str(source_folder / source)] + SYNTHETIC)
        assert result == {"clean": clean, "adversarial": black, "images": 64}, (target, source)
    # a run folder: the model from its model_spec.json, the dataset too
    xs, _ = images_and_labels(8, (32, 32, 3), seed=9)
    model = tiny_cnn9(5, xs)
    save_training_checkpoint(model, "cnn9", tmp_path / "run")
    write_model_spec(tmp_path / "run", resolve("cnn9", variant="tanh_cos", widths=(4, 4, 4),
                                               fc_width=4, num_classes=10), "cifar10")
    xt, yt = synthetic_test(32)
    expected, _ = cnn9_reference_fgsm(model, xt, yt, 8.0)
    logits = lambda v: to_numpy(model(v, training=False))  # noqa: E731
    result, _, _ = run_cli(capsys, [str(tmp_path / "run"), "--source", "synthetic",
                                    "--max_images", "32"])
    assert result == {"clean": np_top1(yt, logits(xt)) / 32,
                      "adversarial": np_top1(yt, logits(expected.astype(np.float32))) / 32,
                      "images": 32}
    # the run as the black-box source of the linear model a
    expected, _ = cnn9_reference_fgsm(model, x, y, 8.0)
    result, _, _ = run_cli(capsys, [str(saved / "a.keras"), "--source_model",
                                    str(tmp_path / "run")] + SYNTHETIC)
    assert result == {"clean": clean, "images": 64,
                      "adversarial": np_top1(y, reference.logits(expected)) / 64}


# --------------------------------------------------------------------------- no TensorFlow


def test_attacks_import_and_run_without_tensorflow():
    """``dcnet_keras.attacks`` on JAX with ``import tensorflow`` failing."""
    pytest.importorskip("jax")
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "import numpy as np, keras\n"
            "from dcnet_keras import attacks\n"
            "m = keras.Sequential([keras.Input((2, 2, 3)), keras.layers.Flatten(),"
            " keras.layers.Dense(3)])\n"
            "m.layers[-1].set_weights([np.random.default_rng(0).normal(0, 0.01, (12, 3)),"
            " np.zeros(3)])\n"
            "x = np.full((2, 2, 2, 3), 100.0, np.float32); y = np.array([0, 1])\n"
            "a = keras.ops.convert_to_numpy(attacks.craft('bim', m, x, y, 4.0, 2.0, 3))\n"
            "assert np.abs(a - x).max() == 4.0, a\n"
            "assert 'tensorflow' not in {k for k, v in sys.modules.items() if v is not None}\n"
            "print('ok')\n")
    child = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=300,
                           env=dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2"))
    assert child.returncode == 0 and child.stdout.strip() == "ok", child.stdout + child.stderr
