"""Mixed precision (``mixed_float16``, ``mixed_bfloat16``): every network against float32.

The reference is the same network in float32 with the same weights (the float32 path is
itself checked against the TF1 fixtures).  Tolerances, relative to the largest |logit| of
the float32 network (README, "Mixed precision"): float16 2e-2, bfloat16 1e-1 (8-bit
mantissa, about 0.4 % per operation, through up to 31 layers).  The moving averages are
zero-debiased here so that inference after one training forward uses real statistics
(the original's averages start at 0: under float16 an untrained network's inference
overflows, see the README).
"""

import os

import keras
import numpy as np
import pytest

import dcnet_keras  # noqa: F401  (registers the layers for loading)
from dcnet_keras.layers import DecoupledConv2D
from dcnet_keras.losses import DCNetCrossEntropy
from dcnet_keras.models import build_model
from dcnet_keras.precision import global_dtype_policy as policy
from fixtures import relative_error

POLICIES = {"mixed_float16": 2e-2, "mixed_bfloat16": 1e-1}
PRESETS = ("tanh_cos", "ball_cos", "seg_cos", "linear_cos", "linear_sqcos_wo_bn", "baseline",
           "cnn9_baseline", "cnn9_sphere_cos", "cnn9_ball_cos", "cnn9_tanh_cos")


def tiny(preset, **extra):
    options = dict(widths=(4, 8, 8), num_classes=10, zero_debias=True, **extra)
    if not preset.startswith("cnn9"):
        options["units_per_stage"] = 1
    keras.utils.set_random_seed(3)
    return build_model(preset, **options)


def pair(preset, policy_name):
    """``(float32 model, mixed model)`` with the same weights."""
    reference = tiny(preset)
    with policy(policy_name):
        mixed = tiny(preset)
    mixed.set_weights(reference.get_weights())
    return reference, mixed


def images(n=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3)).astype("float32")


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
@pytest.mark.parametrize("preset", PRESETS)
def test_training_and_inference_logits_match_float32(preset, policy_name):
    reference, mixed = pair(preset, policy_name)
    x = images()
    for training in (True, False):  # the training forward also fills the moving averages
        expected = numpy(reference(x, training=training))
        logits = mixed(x, training=training)
        assert keras.backend.standardize_dtype(logits.dtype) == "float32", training
        assert np.isfinite(numpy(logits)).all(), training
        assert relative_error(logits, expected) <= POLICIES[policy_name], training
    for variable in mixed.weights:  # weights and moving averages stay float32
        assert variable.dtype == "float32", variable.path


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
@pytest.mark.parametrize("magnitude,angular", [("linear", "sqcos"), ("tanh", "cos"),
                                               ("ball", "cos"), ("sphere", "cos")])
def test_half_precision_patch_norm_of_large_activations(magnitude, angular, policy_name):
    """Activations of 40..60 at 384 channels: sum x^2 over the 3x3x384 patch is ~8.6e6, far
    past float16's 65504 (computed in float16 the patch norm is inf and the output inf or
    nan); formed in float32 it is ~2939 and the output matches float32 to the half type's
    rounding (``linear`` x ``sqcos`` is the patch norm times ``c^2``)."""
    x = np.random.default_rng(1).uniform(40.0, 60.0, (2, 6, 6, 384)).astype("float32")
    assert (x[:, :3, :3, :] ** 2).sum(axis=(1, 2, 3)).min() > 65504 * 100
    layers = {}
    for name in ("float32", policy_name):
        with policy(name):
            layers[name] = DecoupledConv2D(8, 3, magnitude=magnitude, angular=angular)
            layers[name].build(x.shape)
    layers[policy_name].set_weights(layers["float32"].get_weights())
    for training in (True, False):
        expected = numpy(layers["float32"](x, training=training))
        out = layers[policy_name](x, training=training)
        assert keras.backend.standardize_dtype(out.dtype) == policy_name.split("_")[1]
        assert np.isfinite(numpy(out)).all()
        assert relative_error(out, expected) <= (3e-3 if policy_name == "mixed_float16" else 3e-2)


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
@pytest.mark.parametrize("preset", ["tanh_cos", "cnn9_tanh_cos"])
def test_fit_predict_evaluate_and_keras_file(preset, policy_name, tmp_path):
    with policy(policy_name):
        model = tiny(preset)
        optimizer = keras.optimizers.SGD(0.01)
        if policy_name == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, loss=DCNetCrossEntropy(), metrics=["accuracy"])
        x, y = images(16), np.arange(16) % 10
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        predictions = model.predict(x, batch_size=8, verbose=0)
        assert predictions.dtype == np.float32 and np.isfinite(predictions).all()
        loss, accuracy = model.evaluate(x, y, batch_size=8, verbose=0)
        assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
        path = os.path.join(tmp_path, "m.keras")
        model.save(path)
    loaded = keras.models.load_model(path)  # its layers keep their policy
    assert loaded.layers[1].dtype_policy.name == policy_name
    np.testing.assert_array_equal(loaded.predict(x, batch_size=8, verbose=0), predictions)


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
def test_export_keeps_the_documented_dtypes(policy_name, tmp_path):
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModel export needs the TensorFlow backend")
    from dcnet_keras.export import export_saved_model

    reference, mixed = pair("tanh_cos", policy_name)
    x = images(4)
    mixed(x, training=True)  # moving averages filled (the export refuses all-zero ones)
    reference(x, training=True)
    path = export_saved_model(mixed, os.path.join(tmp_path, "export"))
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](images=tf.constant(x.astype(np.uint8)))
    assert out["logits"].dtype == tf.float32 and out["classes"].dtype == tf.int64
    assert out["probabilities"].dtype == tf.float32
    served = loaded.serve(tf.constant(x))
    assert served.dtype == tf.float32
    expected = numpy(reference(x, training=False))
    assert relative_error(out["logits"], expected) <= POLICIES[policy_name]


def test_train_step_with_loss_scaling_matches_float32():
    """TrainStep under mixed_float16 with LossScaleOptimizer: the first step's terms (taken
    before the update) match float32; the update it makes matches float32's to 1e-1 of
    the largest change (the loss scale is divided out again)."""
    pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TrainStep is the TensorFlow step")
    from dcnet_keras.train_step import TrainStep

    reference, mixed = pair("tanh_cos", "mixed_float16")
    before = [numpy(w) for w in reference.trainable_weights]
    x, y = images(8), np.arange(8) % 10
    step32 = TrainStep(reference, keras.optimizers.SGD(0.1), project=False)
    with policy("mixed_float16"):
        step16 = TrainStep(mixed, keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)),
                           project=False)
    terms32, terms16 = step32(x, y), step16(x, y)
    for term in ("fit", "reg", "orth", "loss"):
        assert abs(float(terms16[term]) - float(terms32[term])) <= 2e-2 * abs(
            float(terms32[term])) + 1e-6, term
    change32 = np.concatenate([(numpy(w) - b).ravel()
                               for w, b in zip(reference.trainable_weights, before)])
    change16 = np.concatenate([(numpy(w) - b).ravel()
                               for w, b in zip(mixed.trainable_weights, before)])
    assert np.abs(change32).max() > 0
    assert np.abs(change16 - change32).max() <= 1e-1 * np.abs(change32).max()
