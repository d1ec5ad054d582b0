"""ImageNet input: slim-format shards with real JPEGs of different sizes, record parsing and
checks, the train augmentation and the eval pass, each checked against an independent NumPy
computation of TF1's bilinear resize (no half-pixel centres)."""

import os
import types

import numpy as np
import pytest
from assertions import one_line_error
import tensorflow as tf

from dcnet_keras.data import cifar100 as cd
from dcnet_keras.data import imagenet as ind

MEAN = np.array([121.6, 116.6, 102.7])
SIZES = [(300, 217), (256, 256), (180, 400), (224, 231), (333, 500), (97, 128)]  # (H, W)
TRAIN_LABELS = [1, 1000, 17, 523, 2, 999]  # distinct: label - 1 names the image
VAL_SIZES = [(300, 217), (256, 256), (180, 400), (240, 320), (128, 97), (500, 333), (256, 300)]
VAL_LABELS = [3, 1, 1000, 77, 3, 500, 42]


def _image(shape, seed):
    """A smooth random colour field plus noise (so every 224 window is distinct), uint8."""
    rng = np.random.default_rng(seed)
    h, w = shape
    y, x = np.mgrid[0:h, 0:w] / 50.0
    image = np.stack([128 + 60 * np.sin(y * rng.uniform(0.5, 2) + x * rng.uniform(0.5, 2)
                                        + rng.uniform(0, 6)) for _ in range(3)], -1)
    image += rng.normal(0, 12, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _np_resize_tf1(image, out_h, out_w):
    """TF1 bilinear resize, align_corners=False, no half-pixel centres, in float64 NumPy."""
    image = np.asarray(image, np.float64)
    in_h, in_w = image.shape[:2]

    def taps(n_in, n_out):
        src = np.arange(n_out) * (n_in / n_out)
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, src - low

    y0, y1, fy = taps(in_h, out_h)
    x0, x1, fx = taps(in_w, out_w)
    fx = fx[None, :, None]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    fy = fy[:, None, None]
    return top * (1 - fy) + bottom * fy


def _reference_256(decoded):
    return _np_resize_tf1(decoded.astype(np.float64) - MEAN, 256, 256)


def _stored_jpegs(paths):
    """(decoded uint8 image, label) of every record, read with the protobuf API + decode_jpeg."""
    out = []
    for path in paths:
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            feature = tf.train.Example.FromString(raw).features.feature
            encoded = feature["image/encoded"].bytes_list.value[0]
            label = feature["image/class/label"].int64_list.value[0]
            out.append((tf.io.decode_jpeg(encoded, channels=3).numpy(), label))
    return out


def _find_window(output, reference, atol=2e-3):
    """(row, col, flipped) of the 224x224 window of ``reference`` that ``output`` equals."""
    windows = np.lib.stride_tricks.sliding_window_view(reference, (4, 4, 3))[:33, :33, 0]
    for flipped in (False, True):
        crop = output[:, ::-1] if flipped else output
        corner = np.abs(windows - crop[:4, :4]).max(axis=(2, 3, 4))
        for dy, dx in zip(*np.nonzero(corner < atol)):
            if np.allclose(reference[dy:dy + 224, dx:dx + 224], crop, rtol=0, atol=atol):
                return int(dy), int(dx), flipped
    return None


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imagenet")
    train = [_image(s, k) for k, s in enumerate(SIZES)]
    val = [_image(s, 100 + k) for k, s in enumerate(VAL_SIZES)]
    train_paths = ind.write_shards(folder, "train", train, TRAIN_LABELS, num_shards=3)
    val_paths = ind.write_shards(folder, "validation", val, VAL_LABELS, num_shards=3)
    return types.SimpleNamespace(folder=str(folder), train=train, val=val,
                                 train_paths=train_paths, val_paths=val_paths,
                                 train_decoded=_stored_jpegs(train_paths),
                                 val_decoded=_stored_jpegs(val_paths))


def _data_error(fn, *args, **kwargs):
    return one_line_error(ind.DataError, fn, *args, **kwargs)


# --------------------------------------------------------------------------- files and records


def test_write_shards_and_shard_files(shards):
    assert ind.shard_files(shards.folder, "train") == shards.train_paths
    assert ind.shard_files(shards.folder, "validation") == shards.val_paths
    assert [os.path.basename(p) for p in shards.val_paths] == [
        "validation-00000-of-00003", "validation-00001-of-00003", "validation-00002-of-00003"]
    counts = [sum(1 for _ in tf.data.TFRecordDataset(p)) for p in shards.val_paths]
    assert counts == [2, 3, 2]  # contiguous, as even as possible
    assert [label for _, label in shards.val_decoded] == VAL_LABELS


def test_parse_record_decodes_jpeg_and_subtracts_one(shards):
    raws = list(tf.data.TFRecordDataset(shards.train_paths).as_numpy_iterator())
    assert len(raws) == len(SIZES)
    for k, raw in enumerate(raws):
        image, label = ind.parse_record(tf.constant(raw))
        assert image.dtype == tf.uint8 and label.dtype == tf.int32
        assert int(label) == TRAIN_LABELS[k] - 1
        assert image.shape == SIZES[k] + (3,)
        np.testing.assert_array_equal(image.numpy(), shards.train_decoded[k][0])
        # a real JPEG of our picture (lossy, close)
        assert np.abs(image.numpy().astype(float) - shards.train[k]).mean() < 8


def test_missing_folder_and_pattern(tmp_path):
    message = _data_error(ind.shard_files, tmp_path / "absent", "train")
    assert str(tmp_path / "absent") in message
    ind.write_shards(tmp_path, "train", [_image((40, 30), 0)], [5], num_shards=1)
    message = _data_error(ind.shard_files, tmp_path, "validation")
    assert f"no files match {tmp_path / 'validation-*'}" in message
    assert "validation-*" in _data_error(ind.eval_dataset, tmp_path, 2)
    assert str(tmp_path / "absent") in _data_error(ind.train_dataset, tmp_path / "absent", 2, 0)
    assert "'test'" in _data_error(ind.shard_files, tmp_path, "test")
    assert "'jpeg'" in _data_error(ind.eval_dataset, tmp_path, 2, source="jpeg")
    assert "batch_size" in _data_error(ind.train_dataset, tmp_path, 0, 0)
    assert issubclass(ind.DataError, cd.DataError) and issubclass(ind.DataError, ValueError)


# --------------------------------------------------------------------------- train pipeline


def test_train_preprocess_is_a_window_of_the_tf1_resize(shards):
    image = shards.train_decoded[2][0]  # 180 x 400: shorter than 224, stretched to 256
    reference = _reference_256(image)
    seen = set()
    for k in range(12):
        out = ind.train_preprocess(tf.constant(image), tf.constant([7, k])).numpy()
        assert out.shape == (224, 224, 3) and out.dtype == np.float32
        found = _find_window(out, reference)
        assert found is not None, f"seed pair [7, {k}]: not a window of the resized image"
        seen.add(found)
    assert {f for _, _, f in seen} == {False, True}
    assert len({(r, c) for r, c, _ in seen}) > 4
    again = ind.train_preprocess(tf.constant(image), tf.constant([7, 3]))
    np.testing.assert_array_equal(again, ind.train_preprocess(tf.constant(image), [7, 3]))


def test_train_dataset_batches_are_augmented_records(shards):
    ds = ind.train_dataset(shards.folder, batch_size=4, seed=3, shuffle_buffer=8)
    assert ds.element_spec[0].shape.as_list() == [4, 224, 224, 3]
    assert ds.element_spec[1].shape.as_list() == [4]
    references = {}
    flips, labels = set(), []
    batches = list(ds.take(3).as_numpy_iterator())
    for images, batch_labels in batches:
        assert images.dtype == np.float32 and batch_labels.dtype == np.int32
        for out, label in zip(images, batch_labels):
            k = TRAIN_LABELS.index(int(label) + 1)
            if k not in references:
                references[k] = _reference_256(shards.train_decoded[k][0])
            found = _find_window(out, references[k])
            assert found is not None, f"image {k}: not a window of its resized image"
            flips.add(found[2])
            labels.append(int(label))
    assert flips == {False, True}
    assert sorted(set(labels)) == sorted(v - 1 for v in TRAIN_LABELS)  # 12 draws, all 6 seen
    # deterministic given the seed; another seed gives other batches
    again = next(ind.train_dataset(shards.folder, 4, seed=3, shuffle_buffer=8)
                 .as_numpy_iterator())
    np.testing.assert_array_equal(again[0], batches[0][0])
    np.testing.assert_array_equal(again[1], batches[0][1])
    other = next(ind.train_dataset(shards.folder, 4, seed=4, shuffle_buffer=8)
                 .as_numpy_iterator())
    assert not np.array_equal(other[0], batches[0][0])


# --------------------------------------------------------------------------- eval pipeline


def test_eval_dataset_is_one_ordered_pass(shards):
    batches = list(ind.eval_dataset(shards.folder, batch_size=3).as_numpy_iterator())
    assert [b[0].shape[0] for b in batches] == [3, 3, 1]  # last partial batch kept
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert images.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, np.array(VAL_LABELS) - 1)
    for k, (decoded, _) in enumerate(shards.val_decoded):
        expected = _reference_256(decoded)[16:240, 16:240]
        np.testing.assert_allclose(images[k], expected, rtol=0, atol=2e-3,
                                   err_msg=f"validation image {k}")


# --------------------------------------------------------------------------- bad records


def _good_jpeg_bytes(shape=(60, 50), seed=0):
    return tf.io.encode_jpeg(_image(shape, seed)).numpy()


@pytest.mark.parametrize("bad_label", [0, 1001])
def test_label_out_of_range_raises_and_is_found(tmp_path, bad_label):
    images = [_image((60, 50), k) for k in range(5)]
    labels = [4, 9, 12, bad_label, 600]
    paths = ind.write_shards(tmp_path, "validation", images, labels, num_shards=2)  # 2 + 3
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        list(ind.eval_dataset(tmp_path, batch_size=2).as_numpy_iterator())
    text = str(info.value)
    assert f"label] [{bad_label}]" in text and paths[1] in text and "[record] [1]" in text
    assert ind.find_bad_record(paths[:1]) is None
    assert ind.find_bad_record(paths) == (f"{paths[1]}: record 1: label {bad_label} "
                                          f"outside 1..1000")
    ind.write_shards(tmp_path, "train", images, labels, num_shards=2)
    with pytest.raises(tf.errors.InvalidArgumentError):
        for _ in ind.train_dataset(tmp_path, batch_size=2, seed=0, shuffle_buffer=4).take(5):
            pass


def test_corrupt_jpeg_raises_and_is_found(tmp_path):
    good = _good_jpeg_bytes()
    images = [good, _good_jpeg_bytes(seed=1), good[:len(good) // 2], good]
    paths = ind.write_shards(tmp_path, "validation", images, [1, 2, 3, 4], num_shards=1)
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(ind.eval_dataset(tmp_path, batch_size=4).as_numpy_iterator())
    message = ind.find_bad_record(paths)
    assert message.startswith(f"{paths[0]}: record 2: image/encoded ({len(good) // 2} bytes) "
                              f"is not a decodable JPEG")
    assert "\n" not in message
    assert ind.find_bad_record(paths, check_images=False) is None  # labels only


def test_find_bad_record_other_problems(tmp_path):
    paths = ind.write_shards(tmp_path, "train", [_image((40, 30), k) for k in range(6)],
                             list(range(1, 7)), num_shards=2)
    assert ind.find_bad_record(paths) is None
    # a truncated shard: the last record cannot be read
    data = open(paths[1], "rb").read()
    with open(paths[1], "wb") as f:
        f.write(data[:-10])
    message = ind.find_bad_record(paths)
    assert message.startswith(f"{paths[1]}: record 2: cannot read the record")
    # a shard whose first record has no label, after a good shard
    with tf.io.TFRecordWriter(paths[1]) as writer:
        writer.write(_example_without_label())
    assert ind.find_bad_record(paths) == f"{paths[1]}: record 0: no image/class/label feature"
    assert ind.find_bad_record([tmp_path / "gone"]) == f"{tmp_path / 'gone'}: file not found"


def _example_without_label():
    feature = {"image/encoded": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[_good_jpeg_bytes()]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


# --------------------------------------------------------------------------- tfds source


def _fake_tfds(calls, encoded, labels, fail=None):
    class Builder:
        def __init__(self, name, data_dir):
            calls.append(("builder", name, data_dir))
            if fail is not None:
                raise fail

        def download_and_prepare(self, download_config):
            calls.append(("prepare", download_config))

        def as_dataset(self, split, shuffle_files, read_config, decoders):
            calls.append(("as_dataset", split, shuffle_files, decoders))
            return tf.data.Dataset.from_tensor_slices({
                "image": tf.constant(encoded), "label": tf.constant(labels, tf.int64),
                "file_name": tf.constant([f"n{k}.JPEG" for k in range(len(labels))])})

    return types.SimpleNamespace(
        builder=Builder, ReadConfig=lambda shuffle_seed: ("read", shuffle_seed),
        download=types.SimpleNamespace(DownloadConfig=lambda manual_dir: ("manual", manual_dir)),
        decode=types.SimpleNamespace(SkipDecoding=lambda: "skip"))


def test_tfds_source_labels_are_zero_based(tmp_path, monkeypatch):
    encoded = [_good_jpeg_bytes((70 + 10 * k, 90), k) for k in range(3)]
    calls = []
    monkeypatch.setattr(ind, "_import_tfds", lambda: _fake_tfds(calls, encoded, [0, 999, 5]))
    batches = list(ind.eval_dataset(tmp_path, batch_size=2, source="tfds").as_numpy_iterator())
    assert calls[:2] == [("builder", "imagenet2012", str(tmp_path)),
                         ("prepare", ("manual", str(tmp_path)))]
    assert calls[2] == ("as_dataset", "validation", False, {"image": "skip"})
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), [0, 999, 5])
    decoded = tf.io.decode_jpeg(encoded[1], channels=3).numpy()
    np.testing.assert_allclose(batches[0][0][1], _reference_256(decoded)[16:240, 16:240],
                               rtol=0, atol=2e-3)
    images, labels = next(ind.train_dataset(tmp_path, 3, seed=1, shuffle_buffer=3,
                                            source="tfds").as_numpy_iterator())
    assert calls[-1] == ("as_dataset", "train", True, {"image": "skip"})
    assert set(labels) <= {0, 5, 999}  # (a buffer of 3 over a repeated stream may repeat one)

    monkeypatch.setattr(ind, "_import_tfds", lambda: _fake_tfds(calls, encoded, [0, 1000, 5]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"n1\.JPEG"):
        list(ind.eval_dataset(tmp_path, batch_size=3, source="tfds"))
    monkeypatch.setattr(ind, "_import_tfds",
                        lambda: _fake_tfds(calls, encoded, [0], fail=AssertionError("no tars")))
    message = _data_error(ind.eval_dataset, tmp_path, 3, source="tfds")
    assert str(tmp_path) in message and "no tars" in message
