"""Model builders: parameter counts of the original, shapes, degenerate inputs,
``.keras`` round trips and argument errors."""

import os

import numpy as np
import pytest

import keras

from dcnet_keras.layers import DecoupledConv2D
from dcnet_keras.models import build_model
from dcnet_keras.variants import ORIGINAL_VARIANTS

TINY = dict(num_classes=10, widths=(4, 8, 16), units_per_stage=1)
ALL_VARIANTS = ORIGINAL_VARIANTS + ("baseline", "log_sqcos", "mix_sigmoid", "sphere_linear",
                                    "tanh_cos_wo_bn")


def cifar(variant="tanh_cos", **kwargs):
    """The CIFAR ResNet-32 with ``variant``, through the network registry."""
    return build_model("cifar_resnet32", variant=variant, **kwargs)


def imagenet(**kwargs):
    return build_model("imagenet", **kwargs)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# Counted on the original TF1 graphs at full width (the numbers).
@pytest.mark.parametrize("variant,count", [
    ("tanh_cos", 16_743_552), ("ball_cos", 16_743_552), ("seg_cos", 16_743_552),
    ("linear_cos", 16_736_736), ("linear_sqcos_wo_bn", 16_721_952)])
def test_cifar_parameter_count_equals_original(variant, count):
    assert trainable_count(cifar(variant)) == count


def test_imagenet_parameter_count_equals_original():
    assert trainable_count(imagenet()) == 42_950_400


def test_variant_structure():
    """What each variant name builds, by layer kind."""
    def kinds(model):
        return {type(layer).__name__ for layer in model.layers}

    assert "TF1BatchNormalization" not in kinds(cifar("linear_sqcos_wo_bn", **TINY))
    assert "TF1BatchNormalization" not in kinds(
        cifar("tanh_cos", batch_norm=False, **TINY))
    baseline = cifar("baseline", **TINY)
    assert "DecoupledConv2D" not in kinds(baseline)
    assert all(not np.any(np.isnan(w.numpy())) for w in baseline.weights)
    log_sqcos = cifar("log_sqcos", **TINY)
    convs = [l for l in log_sqcos.layers if isinstance(l, DecoupledConv2D)]
    assert convs and all((l.magnitude, l.angular) == ("log", "sqcos") for l in convs)
    assert not any(l.uses_radius for l in convs)  # log has no radius: no m, no radius weight


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_logits_shape_and_degenerate_inputs(variant):
    model = cifar(variant, **TINY)
    images = {
        "zeros": np.zeros((2, 32, 32, 3), np.float32),
        "constant": np.full((2, 32, 32, 3), 127.5, np.float32),
        "huge": np.full((2, 32, 32, 3), 1e6, np.float32),
        "batch1": np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32),
    }
    for name, x in images.items():
        for training in (True, False):
            logits = np.asarray(model(x, training=training))
            assert logits.shape == (x.shape[0], 10), (name, logits.shape)
            assert np.all(np.isfinite(logits)), (name, training)


@pytest.mark.parametrize("variant", ["tanh_cos", "ball_cos", "seg_cos", "linear_sqcos_wo_bn",
                                     "baseline", "mix_sigmoid"])
def test_degenerate_inputs_give_finite_gradients(variant):
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient check written with tf.GradientTape")
    from dcnet_keras.train_step import gradients

    model = cifar(variant, **TINY)
    labels = np.array([1, 2])
    for value in (0.0, 127.5, 1e6):
        x = tf.constant(np.full((2, 32, 32, 3), value, np.float32))
        terms, _, grads = gradients(model, x, labels)
        assert np.isfinite(float(terms["loss"]))
        for variable, grad in zip(model.trainable_variables, grads):
            assert grad is not None and np.all(np.isfinite(grad)), (value, variable.path)


def test_imagenet_logits_shape_batch_one():
    model = imagenet(num_classes=12, widths=(4, 4, 8, 8))
    x = np.random.default_rng(1).normal(0, 60, (1, 224, 224, 3)).astype(np.float32)
    for training in (True, False):
        logits = np.asarray(model(x, training=training))
        assert logits.shape == (1, 12) and np.all(np.isfinite(logits))


@pytest.mark.parametrize("variant", ALL_VARIANTS + ("imagenet",))
def test_keras_file_round_trip(tmp_path, variant):
    if variant == "imagenet":
        model = imagenet(num_classes=10, widths=(4, 4, 8, 8))
        x = np.random.default_rng(2).normal(0, 60, (2, 224, 224, 3)).astype(np.float32)
    else:
        model = cifar(variant, **TINY)
        x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    model(x, training=True)  # move the averages away from their zero start
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert [w.path for w in restored.weights] == [w.path for w in model.weights]
    for training in (False, True):
        np.testing.assert_array_equal(np.asarray(restored(x, training=training)),
                                      np.asarray(model(x, training=training)))


@pytest.mark.parametrize("kwargs,argument", [
    (dict(variant="tanh_sin"), "variant"),
    (dict(variant="cubic_cos"), "variant"),
    (dict(variant=3), "variant"),
    (dict(num_classes=0), "num_classes"),
    (dict(widths=(8, 16)), "widths"),
    (dict(widths=(8, -16, 32)), "widths"),
    (dict(units_per_stage=0), "units_per_stage"),
    (dict(patch_norm="avg_pool"), "patch_norm"),
])
def test_cifar_builder_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument) as info:
        cifar(**{**TINY, **kwargs})
    value = next(iter(kwargs.values()))
    assert repr(value) in str(info.value) or str(value) in str(info.value)


def test_imagenet_builder_rejects_bad_widths():
    with pytest.raises(ValueError, match=r"widths.*\(1, 2, 3\)"):
        imagenet(widths=(1, 2, 3))


@pytest.mark.parametrize("shape", [(2, 32, 32), (2, 32, 32, 4), (2, 32, 32, 1)])
def test_cifar_model_rejects_wrong_input(shape):
    model = cifar("tanh_cos", **TINY)
    with pytest.raises(ValueError, match=r"shape|rank|ndim|axis"):
        model(np.zeros(shape, np.float32))


def test_tf_checkpoint_saves_every_weight(tmp_path):
    """``tf.train.Checkpoint`` (training checkpoints) must restore the moving
    averages too, not only what ``.keras`` files save."""
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.train.Checkpoint is TensorFlow's")
    for zero_debias in (False, True):
        model = cifar("tanh_cos", zero_debias=zero_debias, **TINY)
        x = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
        model(x, training=True)
        path = tf.train.Checkpoint(model=model).save(str(tmp_path / f"ckpt{zero_debias}"))
        fresh = cifar("tanh_cos", zero_debias=zero_debias, **TINY)
        tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
        for saved, restored in zip(model.weights, fresh.weights):
            np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
