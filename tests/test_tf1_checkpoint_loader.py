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


# --- all or nothing on damaged files (fault injection on a copy of the fixture) ---------

DATA = ".data-00000-of-00001"


@pytest.fixture(scope="module")
def short_model():
    """The fixture's model (tanh_cos, widths 8,16,32, 2 units), built once."""
    return build_model("cifar_resnet32", variant="tanh_cos", widths=(8, 16, 32),
                       units_per_stage=2)


def _scramble(model, seed):
    """Every weight set to random values (none equal to the checkpoint's); returns them."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(np.asarray(rng.normal(size=tuple(w.shape)) + 7.0, dtype=w.dtype))
    return weights_of(model)


def _copy(tmp_path):
    """A writable copy of the fixture checkpoint; returns its prefix."""
    import shutil

    prefix = str(tmp_path / "model.ckpt")
    for ext in (".index", DATA):
        shutil.copyfile(CKPT + ext, prefix + ext)
    return prefix


def _truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def _flip(path, offset, count=16):
    with open(path, "r+b") as f:
        f.seek(offset)
        chunk = f.read(count)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in chunk))


def _size(path):
    import os

    return os.path.getsize(path)


DAMAGE = {
    "data truncated to half": lambda p: _truncate(p + DATA, _size(p + DATA) // 2),
    "data missing its last byte": lambda p: _truncate(p + DATA, _size(p + DATA) - 1),
    "data emptied": lambda p: _truncate(p + DATA, 0),
    "data bytes flipped in the middle": lambda p: _flip(p + DATA, _size(p + DATA) // 2),
    "data deleted": lambda p: __import__("os").remove(p + DATA),
    "index truncated": lambda p: _truncate(p + ".index", _size(p + ".index") // 2),
    "index bytes flipped": lambda p: _flip(p + ".index", 100),
    "index deleted": lambda p: __import__("os").remove(p + ".index"),
    "index garbage": lambda p: open(p + ".index", "wb").write(b"not an sstable" * 100),
}


def test_the_intact_copy_loads(short_model, tmp_path):
    """The damaged copies below fail because of the damage alone: the intact copy
    loads, and every mapped weight then holds the checkpoint's tensor."""
    import tensorflow as tf

    prefix = _copy(tmp_path)
    _scramble(short_model, 0)
    mapping = load_tf1_checkpoint(short_model, prefix)
    reader = tf.train.load_checkpoint(CKPT)
    by_path = {w.path: w for w in short_model.weights}
    assert len(mapping) == len(short_model.weights)
    for weight_path, name in mapping.items():
        np.testing.assert_array_equal(
            by_path[weight_path].numpy().ravel(),
            reader.get_tensor(name).astype(by_path[weight_path].dtype).ravel())


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_checkpoint_is_one_line_and_touches_nothing(short_model, tmp_path, damage):
    prefix = _copy(tmp_path)
    DAMAGE[damage](prefix)
    before = _scramble(short_model, 1)
    with pytest.raises(CheckpointMismatchError) as info:
        load_tf1_checkpoint(short_model, prefix)
    message = str(info.value)
    assert "\n" not in message, message
    assert repr(prefix) in message, message
    assert_untouched(short_model, before)


@pytest.mark.parametrize("state", [b"\x00\xff\xfe garbage", b"garbage {{{ :",
                                   b'model_checkpoint_path: "model.ckpt-99"\n', b""])
def test_a_folder_with_a_bad_state_file_is_one_line(short_model, tmp_path, state):
    _copy(tmp_path)
    (tmp_path / "checkpoint").write_bytes(state)
    before = _scramble(short_model, 2)
    with pytest.raises(CheckpointMismatchError) as info:
        load_tf1_checkpoint(short_model, str(tmp_path))
    message = str(info.value)
    assert "\n" not in message and repr(str(tmp_path)) in message, message
    assert_untouched(short_model, before)


def test_missing_path_is_one_line_and_touches_nothing(short_model, tmp_path):
    before = _scramble(short_model, 3)
    missing = str(tmp_path / "nothing" / "model.ckpt")
    with pytest.raises(CheckpointMismatchError) as info:
        load_tf1_checkpoint(short_model, missing)
    assert "\n" not in str(info.value) and repr(missing) in str(info.value)
    assert_untouched(short_model, before)


def _rewrite_with(prefix, changes):
    """Write the fixture's tensors to ``prefix`` with TensorFlow's own V2 writer
    (``SaveV2``), replacing the named ones by ``changes[name]``."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(CKPT)
    names = sorted(reader.get_variable_to_shape_map())
    tensors = [tf.constant(changes.get(name, reader.get_tensor(name))) for name in names]
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=tensors)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["block2_unit1/second/filter", "root/radius",
                                  "root/bn/root/bn/moments/Squeeze_1/ExponentialMovingAverage"])
def test_non_finite_tensor_is_refused_by_name(short_model, tmp_path, name, bad):
    import tensorflow as tf

    value = np.array(tf.train.load_checkpoint(CKPT).get_tensor(name))
    value.flat[value.size // 2] = bad
    prefix = str(tmp_path / "model.ckpt")
    _rewrite_with(prefix, {name: value})
    before = _scramble(short_model, 4)
    with pytest.raises(CheckpointMismatchError) as info:
        load_tf1_checkpoint(short_model, prefix)
    message = str(info.value)
    assert "\n" not in message and repr(prefix) in message and f"'{name}'" in message, message
    assert "1 non-finite" in message, message
    assert_untouched(short_model, before)


def test_rewritten_checkpoint_without_changes_loads(short_model, tmp_path):
    """The SaveV2 rewrite itself is faithful (so the refusals above are the NaN's doing)."""
    prefix = str(tmp_path / "model.ckpt")
    _rewrite_with(prefix, {})
    _scramble(short_model, 5)
    assert len(load_tf1_checkpoint(short_model, prefix)) == len(short_model.weights)
