"""Our Keras models against the outputs of the original TF1 code (../shared/fixtures).

Every tolerance is relative to the largest magnitude of the array compared.  The
forward checks run on any Keras backend (TensorFlow only reads the checkpoint);
gradient and training-step checks use ``tf.GradientTape``.
"""

import numpy as np
import pytest

from fixtures import (MODELS, build, folder, manifest, moving_averages_by_checkpoint_name,
                      npz, relative_error, requires_fixtures)

pytest.importorskip("tensorflow")  # reads the TF1 checkpoints
import keras  # noqa: E402

from dcnet_keras.callbacks import project_weights  # noqa: E402
from dcnet_keras.losses import loss_terms  # noqa: E402
from dcnet_keras.presets import get_preset  # noqa: E402
from dcnet_keras.recipes import get_recipe  # noqa: E402
from dcnet_keras.tf1_checkpoint import checkpoint_plan, load_tf1_checkpoint  # noqa: E402

pytestmark = requires_fixtures
tensorflow_backend = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                        reason="gradients taken with tf.GradientTape")
TOL = 1e-4
CASES = [(m, k) for m in MODELS for k in ("short", "long")] + [("tanh_cos", "short_zero_debias")]


def loaded(model_name, kind, checkpoint="model.ckpt", **kwargs):
    model = build(model_name, kind, **kwargs)
    load_tf1_checkpoint(model, f"{folder(model_name, kind)}/{checkpoint}")
    return model


def check_moving_averages(model, expected, tol):
    actual = moving_averages_by_checkpoint_name(model, list(expected))
    shadows = [k for k in expected if k.endswith("ExponentialMovingAverage")]
    assert set(shadows) <= set(actual), sorted(set(shadows) - set(actual))
    for name in actual:  # shadows, and debias bookkeeping where the model keeps it
        err = relative_error(actual[name].reshape(expected[name].shape), expected[name])
        assert err < tol, f"{name}: {err}"


@pytest.mark.parametrize("model_name,kind", CASES)
def test_inference_and_training_forward(model_name, kind):
    oracle = npz(model_name, kind, "oracle.npz")
    model = loaded(model_name, kind)

    logits = keras.ops.convert_to_numpy(model(oracle["images"], training=False))
    assert logits.shape == oracle["logits_eval"].shape
    assert relative_error(logits, oracle["logits_eval"]) < TOL
    terms = loss_terms(model, oracle["labels"], logits)
    for ours, theirs in (("fit", "fit_eval"), ("loss", "loss_eval"), ("reg", "reg"),
                         ("orth", "orth")):
        assert relative_error(terms[ours], oracle[theirs]) < TOL, ours

    logits = keras.ops.convert_to_numpy(model(oracle["images"], training=True))  # updates EMAs
    assert relative_error(logits, oracle["logits_train"]) < TOL
    terms = loss_terms(model, oracle["labels"], logits)
    assert relative_error(terms["fit"], oracle["fit_train"]) < TOL
    assert relative_error(terms["loss"], oracle["loss_train"]) < TOL
    if kind != "short_zero_debias":  # that checkpoint's averages are debiased; ours are not
        check_moving_averages(model, npz(model_name, kind, "ema_after_train_forward.npz"), TOL)


def test_zero_debiased_checkpoint_continues_debiasing():
    """With ``zero_debias=True`` the bookkeeping (biased, local_step) is loaded and used."""
    oracle = npz("tanh_cos", "short_zero_debias", "oracle.npz")
    model = loaded("tanh_cos", "short_zero_debias", zero_debias=True)
    logits = keras.ops.convert_to_numpy(model(oracle["images"]))
    assert relative_error(logits, oracle["logits_eval"]) < TOL
    model(oracle["images"], training=True)
    check_moving_averages(
        model, npz("tanh_cos", "short_zero_debias", "ema_after_train_forward.npz"), TOL)


# Our default patch norm (channel sum + box filter) rounds differently from the
# original's ones-filter convolution (1e-7 relative).  Where a ReLU input lies
# within that round-off of 0, the derivative jumps and a whole gradient shifts:
# seg_cos's first batch has one such element (in block3_unit1, 1 in 8192; float64
# agrees with the fixture to 2e-6, float32 box differs by 1.1e-3).  With
# patch_norm="ones_filter" our forward rounds as the original's and every
# gradient matches to 1e-4; the box form is held to 1e-4 elsewhere and to the
# size of that one kink on seg_cos.
BOX_GRADIENT_TOL = {"seg_cos": 2e-3}


@tensorflow_backend
@pytest.mark.parametrize("patch_norm", ["ones_filter", "box"])
@pytest.mark.parametrize("model_name", MODELS)
def test_gradients_at_init(model_name, patch_norm):
    from dcnet_keras.train_step import gradients

    oracle = npz(model_name, "short", "oracle.npz")
    expected = npz(model_name, "short", "grads_step0.npz")
    model = loaded(model_name, "short", "init/model.ckpt", patch_norm=patch_norm)
    names = {v.path: source for v, source in checkpoint_plan(model) if isinstance(source, str)}
    terms, _, grads = gradients(model, oracle["train_images"][0], oracle["train_labels"][0])
    assert relative_error(terms["loss"], manifest(model_name, "short")["step_loss"][0]) < TOL
    assert sorted(names[v.path] for v in model.trainable_variables) == sorted(expected)
    tol = TOL if patch_norm == "ones_filter" else BOX_GRADIENT_TOL.get(model_name, TOL)
    for variable, grad in zip(model.trainable_variables, grads):
        want = expected[names[variable.path]]
        err = relative_error(np.reshape(grad, want.shape), want)
        assert err < tol, f"{names[variable.path]}: {err}"


@tensorflow_backend
@pytest.mark.parametrize("model_name", MODELS)
def test_three_training_steps(model_name):
    oracle = npz(model_name, "short", "oracle.npz")
    info = manifest(model_name, "short")
    model = loaded(model_name, "short", "init/model.ckpt")
    check_moving_averages(model, npz(model_name, "short", "ema_init.npz"), TOL)
    from dcnet_keras.train_step import TrainStep

    # The step and the optimiser the training scripts use (the preset's recipe).
    recipe = get_recipe(get_preset(model_name).recipe)
    step = TrainStep(model, recipe.make_optimizer(float(oracle["lr"])))
    losses = []
    for images, labels in zip(oracle["train_images"], oracle["train_labels"]):
        terms = step(images, labels)
        losses.append([float(terms[k]) for k in ("loss", "fit", "reg", "orth")])
    project_weights(model)
    expected = np.stack([oracle[k] for k in ("step_loss", "step_fit", "step_reg", "step_orth")],
                        axis=1)
    for column in range(4):
        assert relative_error(np.array(losses)[:, column], expected[:, column]) < 1e-3
    assert relative_error(np.array(losses)[:, 0], info["step_loss"]) < 1e-3
    check_moving_averages(model, npz(model_name, "short", "ema_final.npz"), 1e-3)
