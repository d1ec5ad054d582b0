"""``load_tf1_checkpoint`` on mismatching models: errors name both sides, nothing is assigned."""

import numpy as np
import pytest

from fixtures import folder, requires_fixtures

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("TF1 checkpoints are read with the TensorFlow backend", allow_module_level=True)

from dcnet_keras.models import build_model  # noqa: E402
from dcnet_keras.tf1_checkpoint import (CheckpointMismatchError,  # noqa: E402
                                        index_moving_averages, load_tf1_checkpoint)

pytestmark = requires_fixtures
CKPT = f"{folder('tanh_cos', 'short')}/model.ckpt"


def weights_of(model):
    return [np.array(w.numpy()) for w in model.weights]


def assert_untouched(model, before):
    for old, new in zip(before, weights_of(model)):
        np.testing.assert_array_equal(old, new)


def test_shape_mismatch_names_both_sides():
    model = build_model("cifar_resnet32", variant="tanh_cos", widths=(8, 16, 64), units_per_stage=2)
    before = weights_of(model)
    with pytest.raises(CheckpointMismatchError) as info:
        load_tf1_checkpoint(model, CKPT)
    message = str(info.value)
    assert "block3_unit0__first/kernel" in message and "block3_unit0/first/filter" in message
    assert "(3, 3, 16, 64)" in message and "[3, 3, 16, 32]" in message
    assert_untouched(model, before)


def test_missing_variable_names_both_sides():
    model = build_model("cifar_resnet32", variant="tanh_cos", widths=(8, 16, 32), units_per_stage=3)
    with pytest.raises(CheckpointMismatchError, match=r"block1_unit2__first/kernel.*"
                                                      r"block1_unit2/first/filter"):
        load_tf1_checkpoint(model, CKPT)


def test_checkpoint_variables_without_a_place_are_an_error():
    model = build_model("cifar_resnet32", variant="linear_cos", widths=(8, 16, 32), units_per_stage=2)  # no radius, no m
    with pytest.raises(CheckpointMismatchError, match=r"no place in the model: .*root/radius"):
        load_tf1_checkpoint(model, CKPT)
    model = build_model("cifar_resnet32", variant="tanh_cos", widths=(8, 16, 32), units_per_stage=1)  # fewer units
    with pytest.raises(CheckpointMismatchError, match=r"block1_unit1/first/filter"):
        load_tf1_checkpoint(model, CKPT)


def test_wrong_network_and_unreadable_path(tmp_path):
    model = build_model("imagenet", widths=(8, 16, 32, 64))
    with pytest.raises(CheckpointMismatchError, match="root/alpha"):
        load_tf1_checkpoint(model, CKPT)
    with pytest.raises(ValueError, match="path: cannot read"):
        load_tf1_checkpoint(model, str(tmp_path / "nothing" / "model.ckpt"))


def test_moving_average_names_of_every_tensorflow_version():
    """Structure, not spelling: TF 2.x compat.v1, ImageNet's bn_1 and TF 1.0/1.1 names."""
    names = [
        "root/bn/root/bn/moments/Squeeze/ExponentialMovingAverage",
        "root/bn/root/bn/moments/Squeeze_1/ExponentialMovingAverage",
        "root/xnorm_bn/root/xnorm_bn/Mean/ExponentialMovingAverage",
        "conv2/bn/conv2/bn/Mean/ExponentialMovingAverage",
        "conv2/bn/conv2/bn_1/moments/Squeeze/ExponentialMovingAverage",
        "conv2/bn/conv2/bn_1/moments/Squeeze_1/ExponentialMovingAverage",
        "a/b/bn/a/b/bn/moments/moments_1/mean/ExponentialMovingAverage",
        "a/b/bn/a/b/bn/moments/moments_1/variance/ExponentialMovingAverage",
        "root/bn/root/bn/root/bn/moments/Squeeze/ExponentialMovingAverage/biased",
        "root/bn/root/bn/root/bn/moments/Squeeze/ExponentialMovingAverage/local_step",
        "root/filter", "root/bn/gamma/bias",
    ]
    index = index_moving_averages(names)
    assert index == {
        ("root", "mean", "shadow"): names[0], ("root", "variance", "shadow"): names[1],
        ("root", "patch_norm_mean", "shadow"): names[2],
        ("conv2", "patch_norm_mean", "shadow"): names[3],
        ("conv2", "mean", "shadow"): names[4], ("conv2", "variance", "shadow"): names[5],
        ("a/b", "mean", "shadow"): names[6], ("a/b", "variance", "shadow"): names[7],
        ("root", "mean", "biased"): names[8], ("root", "mean", "local_step"): names[9],
    }
