"""Keras habits (issue 10, item 5): ``sample_weight`` / ``class_weight`` with the loss,
``WeightProjection`` under ``steps_per_execution``, channels-first refused, and
``import dcnet_keras`` enough to load a ``.keras`` file.

Expectations are NumPy transcriptions of the formulas (SPEC.md section 4) or closed
forms, never earlier outputs of the library.
"""

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from dcnet_keras import callbacks
from dcnet_keras.callbacks import WeightProjection, projection_crossed
from dcnet_keras.layers import DecoupledConv2D, PlainConv2D, TF1BatchNormalization, TF1PReLU
from dcnet_keras.losses import DCNetCrossEntropy, dcnet_cross_entropy
from dcnet_keras.optimizers import TF1Momentum

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------------------
# NumPy reference of the original loss2, per example (float64).


def np_losses(labels, logits):
    """``-sum_k t_k log(softmax_k + 1e-4)``, ``t = 0.99 onehot + 0.01 / K``, per row."""
    logits = np.asarray(logits, np.float64)
    k = logits.shape[-1]
    z = logits - logits.max(axis=-1, keepdims=True)
    softmax = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    targets = 0.99 * np.eye(k)[np.asarray(labels).reshape(-1)] + 0.01 / k
    return -np.sum(targets * np.log(softmax + 1e-4), axis=-1)


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float64)


def _batch(n=16, k=10, seed=0):
    rng = np.random.default_rng(seed)
    # scale 6: many softmax entries fall below the 1e-4 floor
    logits = rng.normal(0.0, 6.0, size=(n, k)).astype(np.float32)
    labels = rng.integers(0, k, size=n).astype(np.int32)
    return labels, logits


# --------------------------------------------------------------------------------------
# The loss and sample_weight.


def test_loss_class_reductions_match_numpy():
    labels, logits = _batch()
    per_example = np_losses(labels, logits)
    np.testing.assert_allclose(_numpy(DCNetCrossEntropy()(labels, logits)),
                               per_example.mean(), rtol=1e-6)
    # the default reduction is the function's (the original's) mean
    np.testing.assert_allclose(_numpy(DCNetCrossEntropy()(labels, logits)),
                               _numpy(dcnet_cross_entropy(labels, logits)), rtol=1e-6)
    np.testing.assert_allclose(_numpy(DCNetCrossEntropy(reduction="none")(labels, logits)),
                               per_example, rtol=1e-5)
    np.testing.assert_allclose(_numpy(DCNetCrossEntropy(reduction="sum")(labels, logits)),
                               per_example.sum(), rtol=1e-6)
    # [N, 1] labels as Keras passes them
    np.testing.assert_allclose(_numpy(DCNetCrossEntropy()(labels.reshape(-1, 1), logits)),
                               per_example.mean(), rtol=1e-6)


def test_sample_weight_weighs_each_example():
    labels, logits = _batch()
    per_example = np_losses(labels, logits)
    weights = np.array([1.0] * 8 + [0.0] * 8, np.float32)
    # Keras's "sum_over_batch_size": sum(w * l) / N = mean of the first 8 x 8/16
    expected = per_example[:8].mean() * 0.5
    unweighted_half = per_example.mean() * 0.5  # what a one-number loss gives
    assert abs(expected - unweighted_half) > 1e-2 * expected  # the test tells them apart
    np.testing.assert_allclose(_numpy(DCNetCrossEntropy()(labels, logits, weights)),
                               expected, rtol=1e-6)
    np.testing.assert_allclose(_numpy(dcnet_cross_entropy(labels, logits, weights)),
                               expected, rtol=1e-6)
    np.testing.assert_allclose(
        _numpy(dcnet_cross_entropy(labels, logits, weights.reshape(-1, 1))), expected,
        rtol=1e-6)
    # the reduction that divides by sum(w) instead
    np.testing.assert_allclose(
        _numpy(DCNetCrossEntropy(reduction="mean_with_sample_weight")(labels, logits, weights)),
        per_example[:8].mean(), rtol=1e-6)


def _identity_model(k):
    inputs = keras.Input((k,))
    return keras.Model(inputs, keras.layers.Identity()(inputs))


def test_sample_weight_in_evaluate():
    labels, logits = _batch(n=16, k=10, seed=1)
    weights = np.array([1.0] * 8 + [0.0] * 8, np.float32)
    expected = np_losses(labels, logits)[:8].mean() * 0.5
    model = _identity_model(10)  # logits = inputs
    model.compile(loss=DCNetCrossEntropy())
    got = model.evaluate(logits, labels, sample_weight=weights, batch_size=16, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # unweighted: the original's mean
    got = model.evaluate(logits, labels, batch_size=16, verbose=0)
    np.testing.assert_allclose(got, np_losses(labels, logits).mean(), rtol=1e-6)


def test_class_weight_in_fit():
    n, d, k = 12, 5, 3
    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, d)).astype(np.float32)
    labels = np.array([0, 1, 2] * 4, np.int32)
    class_weight = {0: 1.0, 1: 0.0, 2: 3.0}
    inputs = keras.Input((d,))
    dense = keras.layers.Dense(k, kernel_initializer=keras.initializers.RandomNormal(0.0, 2.0,
                                                                                    seed=3),
                               bias_initializer="zeros")
    model = keras.Model(inputs, dense(inputs))
    kernel = dense.kernel.numpy().astype(np.float64)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=DCNetCrossEntropy())
    history = model.fit(x, labels, class_weight=class_weight, batch_size=n, epochs=1,
                        shuffle=False, verbose=0)
    per_example = np_losses(labels, x.astype(np.float64) @ kernel)
    w = np.array([class_weight[int(c)] for c in labels])
    expected = np.sum(w * per_example) / n
    assert abs(expected - per_example.mean()) > 1e-2 * expected
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)


def test_loss_serialises():
    loss = DCNetCrossEntropy(reduction="sum")
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, DCNetCrossEntropy) and again.reduction == "sum"


# --------------------------------------------------------------------------------------
# WeightProjection under steps_per_execution.


def test_projection_crossed_brute_force():
    for previous in range(0, 420, 7):
        for current in range(previous, previous + 230, 3):
            expected = any(i > 1 and i % 100 == 1 for i in range(previous + 1, current + 1))
            assert projection_crossed(previous, current) == expected, (previous, current)
    assert projection_crossed(keras.Variable(100, dtype="int64"), 104)


def _np_project(kernel):
    kernel = np.asarray(kernel, np.float64)
    return kernel / np.sqrt(np.sum(kernel ** 2, axis=(0, 1, 2)) + 1e-4)


def _filter_norms(kernel):
    return np.sqrt(np.sum(np.asarray(kernel, np.float64) ** 2, axis=(0, 1, 2)))


def _projection_model(k=3):
    inputs = keras.Input((4, 4, 3))
    x = DecoupledConv2D(4, 3, magnitude="tanh", angular="cos", name="dec")(inputs)
    x = DecoupledConv2D(k, 4, padding="valid", magnitude="linear", angular="cos",
                        name="head")(x)
    return keras.Model(inputs, keras.layers.Reshape((k,))(x))


@pytest.fixture
def recorded_projections(monkeypatch):
    """Wrap ``callbacks.project_weights``: record the iteration count of each call and
    the filters before and after it."""
    calls = []
    real = callbacks.project_weights

    def recording(model):
        layers = callbacks.decoupled_layers(model)
        before = [layer.kernel.numpy().copy() for layer in layers]
        real(model)
        after = [layer.kernel.numpy().copy() for layer in layers]
        calls.append((int(model.optimizer.iterations.numpy()), before, after))

    monkeypatch.setattr(callbacks, "project_weights", recording)
    return calls


def _fit(model, steps, steps_per_execution, seed=0):
    rng = np.random.default_rng(seed)
    batch = 2
    x = rng.integers(0, 256, size=(steps * batch, 4, 4, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=(steps * batch,)).astype(np.int32)
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0,
              callbacks=[WeightProjection()])


@pytest.mark.parametrize("steps_per_execution", [1, 4, 7])
def test_weight_projection_under_steps_per_execution(recorded_projections,
                                                    steps_per_execution):
    keras.utils.set_random_seed(0)
    model = _projection_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=DCNetCrossEntropy(),
                  steps_per_execution=steps_per_execution)
    _fit(model, 240, steps_per_execution)
    assert int(model.optimizer.iterations.numpy()) == 240
    k = steps_per_execution
    # the first batch end at or after 101 and 201: executions end at k, 2k, ... (and 240)
    expected = [min(math.ceil(i / k) * k, 240) for i in (101, 201)]
    assert [it for it, _, _ in recorded_projections] == expected
    for _, before, after in recorded_projections:
        assert len(after) == 2
        for b, a in zip(before, after):
            np.testing.assert_allclose(a, _np_project(b), rtol=1e-5, atol=1e-8)
            n = _filter_norms(b)
            np.testing.assert_allclose(_filter_norms(a), n / np.sqrt(n ** 2 + 1e-4), rtol=1e-5)
            np.testing.assert_allclose(_filter_norms(a), 1.0, atol=1e-3)
            assert np.abs(n - 1.0).max() > 1e-2  # they were not unit norm before


def test_weight_projection_resumed_mid_execution(recorded_projections):
    """A second ``fit`` (a fresh callback) from iteration 100 projects at 104 (k = 4)."""
    keras.utils.set_random_seed(1)
    model = _projection_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=DCNetCrossEntropy(),
                  steps_per_execution=4)
    _fit(model, 100, 4)
    assert recorded_projections == []
    _fit(model, 8, 4, seed=1)
    assert int(model.optimizer.iterations.numpy()) == 108
    assert [it for it, _, _ in recorded_projections] == [104]


# --------------------------------------------------------------------------------------
# Channels-first refused.


@pytest.fixture
def channels_first():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        yield
    finally:
        keras.config.set_image_data_format(previous)


@pytest.mark.parametrize("make", [
    lambda: DecoupledConv2D(4, 3, name="layer_under_test"),
    lambda: PlainConv2D(4, 3, name="layer_under_test"),
    lambda: TF1BatchNormalization(name="layer_under_test"),
    lambda: TF1PReLU(name="layer_under_test"),
], ids=["DecoupledConv2D", "PlainConv2D", "TF1BatchNormalization", "TF1PReLU"])
def test_channels_first_config_is_refused(channels_first, make):
    layer = make()
    with pytest.raises(ValueError) as raised:
        layer(keras.Input((3, 32, 32)))
    message = str(raised.value)
    assert "\n" not in message
    assert "layer_under_test" in message and "channels_first" in message
    assert "channels-last only" in message and "(None, 3, 32, 32)" in message


def test_channels_last_still_builds():
    assert keras.config.image_data_format() == "channels_last"
    out = DecoupledConv2D(4, 3)(keras.Input((32, 32, 3)))
    assert tuple(out.shape) == (None, 32, 32, 4)


def test_model_refuses_a_channels_first_array():
    """The networks fix their input to (32, 32, 3): an NCHW batch is refused, not
    silently read as height 3, width 32, 32 channels."""
    from dcnet_keras.models import build_model

    model = build_model("cifar_resnet32", variant="tanh_cos", num_classes=10,
                        widths=(4, 8, 16), units_per_stage=1)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 32, 32, 3\)"):
        model(np.zeros((2, 3, 32, 32), np.float32))


def test_data_format_argument_is_refused():
    with pytest.raises(ValueError, match="data_format"):
        DecoupledConv2D(4, 3, data_format="channels_first")


# --------------------------------------------------------------------------------------
# import dcnet_keras is enough to load a .keras file.


LOAD_SCRIPT = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    path, inputs, outputs = sys.argv[1:4]
    try:
        keras.models.load_model(path)
    except Exception as error:  # expected: the classes are not registered yet
        print("without: failed", "DecoupledConv2D" in str(error))
    else:
        print("without: loaded")
    import dcnet_keras
    model = keras.models.load_model(path)
    print("loss:", type(model.loss).__name__)
    print("optimizer:", type(model.optimizer).__name__)
    got = np.asarray(model(np.load(inputs), training=False))
    print("same:", bool(np.array_equal(got, np.load(outputs))))
    print("modules:", "dcnet_keras.train_step" in sys.modules, "dcnet_keras.data" in sys.modules)
""")


@pytest.mark.e2e
def test_import_dcnet_keras_registers_everything(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = DecoupledConv2D(4, 3, magnitude="tanh", angular="cos", orthogonality=1e-5)(inputs)
    x = TF1BatchNormalization(weight_decay=5e-4)(x)
    x = TF1PReLU()(x)
    x = PlainConv2D(5, 8, padding="valid", weight_decay=5e-4)(x)
    model = keras.Model(inputs, keras.layers.Reshape((5,))(x))
    model.compile(optimizer=TF1Momentum(0.01, momentum=0.9), loss=DCNetCrossEntropy())
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    model.fit(images, np.arange(4) % 5, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "in.npy", images)
    np.save(tmp_path / "out.npy", keras.ops.convert_to_numpy(model(images, training=False)))

    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(path), str(tmp_path / "in.npy"),
         str(tmp_path / "out.npy")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    # the negative control: keras alone cannot find the classes
    assert lines["without"] == "failed True", lines
    assert lines["loss"] == "DCNetCrossEntropy"
    assert lines["optimizer"] == "TF1Momentum"
    assert lines["same"] == "True"
    # import dcnet_keras pulls in no TensorFlow-only module of the package
    assert lines["modules"] == "False False"
