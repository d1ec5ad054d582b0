"""Table 1's optimisation switches and Tables 7-8's adversarial training step.

* weighted gradients: only decoupled filters' gradients change, each by exactly its norm
  ``sqrt(sum w^2 + 1e-4)`` (computed here in NumPy), seen through a plain SGD update;
* ``project=False``: no projection where the original projects (after update 101);
* adversarial training: the step's fit is the documented mix, recomputed here with an
  independent GradientTape on a copy of the model, and the crafting forward leaves the
  moving averages alone;
* the switches are stored in ``model_spec.json`` and a resume must keep them.
"""

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from assertions import one_line_error  # noqa: E402
from dcnet_keras.layers import DecoupledConv2D  # noqa: E402
from dcnet_keras.losses import per_example_cross_entropy  # noqa: E402
from dcnet_keras.models import build_model  # noqa: E402
from dcnet_keras.train_step import TrainStep, gradients  # noqa: E402

EPSILON = 8.0


def tiny_cnn9(seed=0):
    keras.utils.set_random_seed(seed)
    return build_model("cnn9", variant="tanh_cos", widths=(4, 4, 4), fc_width=4,
                       num_classes=10)


def batch(n=6, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3)).astype("float32")
    return tf.constant(images), tf.constant(rng.integers(0, 10, n).astype("int32"))


def numpy_filter_norms(kernel):
    kernel = np.asarray(kernel, np.float64)
    return np.sqrt(np.sum(kernel ** 2, axis=(0, 1, 2)) + 1e-4)


def decoupled_kernel_paths(model):
    return {layer.kernel.path for layer in model.layers if isinstance(layer, DecoupledConv2D)}


def test_weighted_gradients_scale_only_decoupled_filters_by_their_norm():
    model = tiny_cnn9()
    images, labels = batch()
    _, _, grads = gradients(model, images, labels)
    before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
    step = TrainStep(model, keras.optimizers.SGD(learning_rate=1.0), project=False,
                     weighted_gradients=True)
    step(images, labels)
    decoupled = decoupled_kernel_paths(model)
    assert len(decoupled) == 10  # nine convs and fc6
    for variable, old, grad in zip(model.trainable_variables, before, grads):
        expected = np.asarray(grad, np.float64)
        if variable.path in decoupled:
            expected = expected * numpy_filter_norms(old)
        np.testing.assert_allclose(old - variable.numpy(), expected, rtol=2e-4, atol=1e-7,
                                   err_msg=variable.path)


def test_without_projection_the_filters_keep_their_norms_after_update_101():
    images, labels = batch()
    norms = {}
    for project in (True, False):
        model = tiny_cnn9()
        optimizer = keras.optimizers.SGD(learning_rate=1e-3)
        step = TrainStep(model, optimizer, project=project)
        optimizer.iterations.assign(100)  # the next update is number 101: projected after
        step(images, labels)
        norms[project] = [numpy_filter_norms(layer.kernel.numpy()) for layer in model.layers
                          if isinstance(layer, DecoupledConv2D)]
    for projected, kept in zip(norms[True], norms[False]):
        # projected: |w| / sqrt(|w|^2 + 1e-4) is just below 1 whatever |w| was
        np.testing.assert_allclose(projected, 1.0, atol=1e-3)
        assert np.all(np.abs(kept - 1.0) > 1e-2)  # He-initialised 3x3 filters: far from 1


def _moving_averages(model):
    return [v.numpy().copy() for v in model.non_trainable_variables]


def test_adversarial_step_trains_on_the_documented_mix():
    model, copy = tiny_cnn9(), tiny_cnn9()
    initial = model.get_weights()  # the moving averages included
    copy.set_weights(initial)
    images, labels = batch(n=6)
    step = TrainStep(model, keras.optimizers.SGD(learning_rate=0.0), project=False,
                     adversarial_epsilon=EPSILON)
    values = step(images, labels)

    # By hand: FGSM of the plain softmax cross entropy of the whole clean batch in training
    # mode, the last 3 images replaced.
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels, copy(images, training=True)))
    sign = np.sign(tape.gradient(loss, images).numpy())
    adversarial = np.clip(images.numpy() + EPSILON * sign, 0.0, 255.0)
    mixed = np.concatenate([images.numpy()[:3], adversarial[3:]])
    assert np.abs(mixed[3:] - images.numpy()[3:]).max() == EPSILON
    fresh = tiny_cnn9()
    fresh.set_weights(initial)  # learning rate 0: the step's weights, the averages unstepped
    logits = fresh(mixed, training=True)
    fit = float(tf.reduce_mean(per_example_cross_entropy(labels, logits)))
    clean_half = float(tf.reduce_mean(per_example_cross_entropy(labels[:3], logits[:3])))
    adversarial_half = float(tf.reduce_mean(per_example_cross_entropy(labels[3:], logits[3:])))
    assert float(values["fit"]) == pytest.approx(fit, rel=1e-5)
    assert fit == pytest.approx((clean_half + adversarial_half) / 2, rel=1e-6)
    assert adversarial_half > clean_half  # the attack works on this batch
    # one moving-average step (the mixed batch's), not two: the crafting forward made none
    for got, want in zip(_moving_averages(model), _moving_averages(fresh)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_adversarial_epsilon_zero_is_clean_training():
    model, copy = tiny_cnn9(), tiny_cnn9()
    copy.set_weights(model.get_weights())
    images, labels = batch()
    adversarial = TrainStep(model, keras.optimizers.SGD(learning_rate=0.1), project=False,
                            adversarial_epsilon=0.0)(images, labels)
    clean = TrainStep(copy, keras.optimizers.SGD(learning_rate=0.1), project=False)(
        images, labels)
    assert float(adversarial["fit"]) == pytest.approx(float(clean["fit"]), rel=1e-6)
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# --- the training CLI: stored and checked on resume ------------------------------------

def _train(tmp_path, *extra, steps=2):
    from dcnet_keras.training.cli import main

    return main(["--network", "cnn9", "--variant", "tanh_cos", "--widths", "4", "4", "4",
                 "--source", "synthetic", "--batch_size", "8", "--max_steps", str(steps),
                 "--eval_every", "100", "--log_every", "100", "--no_export", "--no-progress",
                 "--model_dir", str(tmp_path / "m"), "--log_dir", str(tmp_path / "l"),
                 *extra], repo_root=str(tmp_path))


@pytest.mark.e2e
def test_switches_are_recorded_and_a_resume_must_keep_them(tmp_path):
    _train(tmp_path, "--no-projection", "--weighted_gradients", "--adversarial", "fgsm",
           "--adversarial_epsilon", "4", "--weighted", "linear")
    record = json.loads((tmp_path / "m" / "model_spec.json").read_text())
    assert (record["projection"], record["weighted_gradients"], record["adversarial"],
            record["adversarial_epsilon"]) == (False, True, "fgsm", 4.0)
    assert record["model"]["conv_options"] == {"weighted": "linear"}
    message = one_line_error(SystemExit, _train, tmp_path, "--weighted_gradients",
                             "--adversarial", "fgsm", "--adversarial_epsilon", "4",
                             "--weighted", "linear", steps=3)
    assert "--projection" in message and "False" in message, message
    message = one_line_error(SystemExit, _train, tmp_path, "--no-projection",
                             "--weighted_gradients", "--adversarial", "fgsm",
                             "--adversarial_epsilon", "2", "--weighted", "linear", steps=3)
    assert "--adversarial_epsilon" in message, message


@pytest.mark.parametrize("argv,flag", [
    (["--variant", "baseline", "--weighted", "linear"], "--weighted"),
    (["--variant", "sphere_cos", "--weighted", "joint"], "--weighted"),
])
def test_bad_switches_are_one_line(tmp_path, argv, flag):
    from dcnet_keras.training.cli import main

    message = one_line_error(SystemExit, main, ["--network", "cnn9", "--source", "synthetic",
                                                "--model_dir", str(tmp_path / "m"), *argv],
                             repo_root=str(tmp_path))
    assert message.startswith(f"error: {flag}:"), message
