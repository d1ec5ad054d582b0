"""XLA (``jit_compile=True``) on TensorFlow: every layer and the training step give the
non-XLA numbers (XLA fuses and reorders float32 arithmetic, so equal to round-off)."""

import keras
import numpy as np
import pytest

from dcnet_keras import operators
from dcnet_keras.layers import DecoupledConv2D, PlainConv2D, TF1BatchNormalization, TF1PReLU
from dcnet_keras.models import build_model
from dcnet_keras.recipes import get_recipe

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.function(jit_compile=True) is the TensorFlow backend's XLA")


def forward_and_gradients(layers, x, jit_compile):
    """Training- and inference-mode outputs of each layer, and the gradients of
    ``sum(training output * weights)`` for its inputs and trainable weights."""
    probe = tf.constant(np.random.default_rng(5).normal(size=(1,) + tuple(
        layers[0].compute_output_shape(x.shape)[1:])).astype("float32"))

    @tf.function(jit_compile=jit_compile)
    def run(x):
        results = []
        for layer in layers:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                objective = tf.reduce_sum(y * probe)
            grads = tape.gradient(objective, [x] + layer.trainable_weights)
            results.append([y, layer(x, training=False)] + grads)
        return results

    return [[t.numpy() for t in r] for r in run(tf.constant(x))]


def assert_close(xla, plain, tolerance=1e-5):
    for layer_xla, layer_plain in zip(xla, plain):
        for a, b in zip(layer_xla, layer_plain):
            scale = max(np.abs(b).max(), 1e-30)
            assert np.abs(a - b).max() <= tolerance * scale


@pytest.mark.parametrize("magnitude", operators.MAGNITUDES)
def test_decoupled_conv_under_xla(magnitude):
    x = np.random.default_rng(0).normal(0, 1, (2, 7, 7, 3)).astype("float32")
    layers = []
    for angular in operators.ANGULARS:
        for weighted in (False, True):
            layer = DecoupledConv2D(4, 3, strides=2, magnitude=magnitude, angular=angular,
                                    weighted=weighted)
            layer.build(x.shape)
            layers.append(layer)
    plain = forward_and_gradients(layers, x, jit_compile=False)
    for layer in layers:  # the first run moved the moving averages: start them again
        for w in layer.non_trainable_weights:
            w.assign(np.zeros(w.shape, "float32"))
    assert_close(forward_and_gradients(layers, x, jit_compile=True), plain)


def test_plain_layers_under_xla():
    x = np.random.default_rng(1).normal(0, 1, (2, 6, 6, 4)).astype("float32")
    conv = PlainConv2D(4, 3)
    norm = TF1BatchNormalization()
    prelu = TF1PReLU()
    layers = [conv, norm, prelu]
    for layer in layers:
        layer.build(x.shape)
    prelu.alpha.assign(np.full((4,), 0.25, "float32"))
    norm.moving_variance.value.assign(np.full((4,), 0.5, "float32"))
    plain = forward_and_gradients(layers, x, jit_compile=False)
    norm.moving_mean.value.assign(np.zeros((4,), "float32"))
    norm.moving_variance.value.assign(np.full((4,), 0.5, "float32"))
    assert_close(forward_and_gradients(layers, x, jit_compile=True), plain)


# CNN-9's layers are all in the layer tests above; its step is the slow tier
@pytest.mark.parametrize("preset", ["tanh_cos",
                                    pytest.param("cnn9_tanh_cos", marks=pytest.mark.slow)])
def test_train_step_under_xla_gives_the_same_losses(preset):
    from dcnet_keras.train_step import TrainStep

    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (8, 32, 32, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, 10, (8,)).astype("int32"))
    options = dict(widths=(4, 8, 8), num_classes=10)
    if not preset.startswith("cnn9"):
        options["units_per_stage"] = 1
    recipe = "spherenet_cnn9" if preset.startswith("cnn9") else "dcnet_cifar"
    losses = {}
    for jit_compile in (False, True):
        keras.utils.set_random_seed(1)
        model = build_model(preset, **options)
        step = TrainStep(model, get_recipe(recipe).make_optimizer(), jit_compile=jit_compile)
        losses[jit_compile] = [{k: float(v) for k, v in step(x, y).items()} for _ in range(3)]
    for xla, plain in zip(losses[True], losses[False]):
        for term in ("fit", "reg", "orth", "loss"):
            assert abs(xla[term] - plain[term]) <= 1e-5 * max(abs(plain[term]), 1.0), term
