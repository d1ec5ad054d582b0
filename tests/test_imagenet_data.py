"""ImageNet input: slim-format shards with real JPEGs of different sizes, record parsing and
checks, the train augmentation and the eval pass, each checked against an independent NumPy
computation of TF1's bilinear resize (no half-pixel centres, ``numpy_reference``), the bad-record
scan and the ``DataSource`` that the dataset registry opens."""

import os
import types

import numpy as np
import pytest
from assertions import one_line_error
from numpy_reference import tf1_bilinear_resize
import tensorflow as tf

from dcnet_keras.data import imagenet as ind
from dcnet_keras.data import imagenet_records as rec
from dcnet_keras.data.errors import DataError
from dcnet_keras.data.imagenet_forensics import find_bad_record
from dcnet_keras.data.imagenet_preprocessing import train_preprocess
from dcnet_keras.data.registry import get_dataset
from dcnet_keras.data.shard_writer import encode_jpeg, random_image, write_shards

MEAN = np.array([121.6, 116.6, 102.7])
SIZES = [(300, 217), (256, 256), (180, 400), (224, 231), (333, 500), (97, 128)]  # (H, W)
TRAIN_LABELS = [1, 1000, 17, 523, 2, 999]  # distinct: label - 1 names the image
VAL_SIZES = [(300, 217), (256, 256), (180, 400), (240, 320), (128, 97), (500, 333), (256, 300)]
VAL_LABELS = [3, 1, 1000, 77, 3, 500, 42]


def _image(shape, seed):
    return random_image(shape[0], shape[1], seed)


def _reference_256(decoded):
    return tf1_bilinear_resize(decoded.astype(np.float64) - MEAN, 256, 256)


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
    train_paths = write_shards(folder, "train", train, TRAIN_LABELS, num_shards=3)
    val_paths = write_shards(folder, "validation", val, VAL_LABELS, num_shards=3)
    return types.SimpleNamespace(folder=str(folder), train=train, val=val,
                                 train_paths=train_paths, val_paths=val_paths,
                                 train_decoded=_stored_jpegs(train_paths),
                                 val_decoded=_stored_jpegs(val_paths))


def _data_error(fn, *args, **kwargs):
    return one_line_error(DataError, fn, *args, **kwargs)


# --------------------------------------------------------------------------- files and records


def test_write_shards_and_shard_files(shards):
    assert rec.shard_files(shards.folder, "train") == shards.train_paths
    assert rec.shard_files(shards.folder, "validation") == shards.val_paths
    assert [os.path.basename(p) for p in shards.val_paths] == [
        "validation-00000-of-00003", "validation-00001-of-00003", "validation-00002-of-00003"]
    counts = [sum(1 for _ in tf.data.TFRecordDataset(p)) for p in shards.val_paths]
    assert counts == [2, 3, 2]  # contiguous, as even as possible
    assert [label for _, label in shards.val_decoded] == VAL_LABELS


def test_random_image_and_writer_errors(tmp_path):
    image = random_image(37, 53, seed=4)
    assert image.shape == (37, 53, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, random_image(37, 53, seed=4))
    assert not np.array_equal(image, random_image(37, 53, seed=5))
    assert image.std() > 20  # a picture, not a flat field
    assert "2 images but 1 labels" in _data_error(write_shards, tmp_path, "train",
                                                  [image, image], [1], 1)
    assert "num_shards must be >= 1, got 0" in _data_error(write_shards, tmp_path, "train",
                                                           [image], [1], 0)
    message = _data_error(write_shards, tmp_path, "train", [image[..., :2]], [1], 1)
    assert "image 0 must be uint8 [H, W, 3]" in message and "(37, 53, 2)" in message
    assert "0 x 5" in _data_error(random_image, 0, 5, seed=0)


def test_parse_record_decodes_jpeg_and_subtracts_one(shards):
    raws = list(tf.data.TFRecordDataset(shards.train_paths).as_numpy_iterator())
    assert len(raws) == len(SIZES)
    for k, raw in enumerate(raws):
        image, label = rec.parse_record(tf.constant(raw))
        assert image.dtype == tf.uint8 and label.dtype == tf.int32
        assert int(label) == TRAIN_LABELS[k] - 1
        assert image.shape == SIZES[k] + (3,)
        np.testing.assert_array_equal(image.numpy(), shards.train_decoded[k][0])
        # a real JPEG of our picture (lossy, close)
        assert np.abs(image.numpy().astype(float) - shards.train[k]).mean() < 8


def test_missing_folder_and_pattern(tmp_path):
    message = _data_error(rec.shard_files, tmp_path / "absent", "train")
    assert str(tmp_path / "absent") in message
    write_shards(tmp_path, "train", [_image((40, 30), 0)], [5], num_shards=1)
    message = _data_error(rec.shard_files, tmp_path, "validation")
    assert f"no files match {tmp_path / 'validation-*'}" in message
    assert "validation-*" in _data_error(ind.eval_dataset, tmp_path, 2)
    assert str(tmp_path / "absent") in _data_error(ind.train_dataset, tmp_path / "absent", 2, 0)
    assert "'test'" in _data_error(rec.shard_files, tmp_path, "test")
    assert "'jpeg'" in _data_error(ind.eval_dataset, tmp_path, 2, source="jpeg")
    assert "batch_size" in _data_error(ind.train_dataset, tmp_path, 0, 0)
    assert issubclass(DataError, ValueError)


# --------------------------------------------------------------------------- train pipeline


def test_train_preprocess_is_a_window_of_the_tf1_resize(shards):
    image = shards.train_decoded[2][0]  # 180 x 400: shorter than 224, stretched to 256
    reference = _reference_256(image)
    seen = set()
    for k in range(12):
        out = train_preprocess(tf.constant(image), tf.constant([7, k])).numpy()
        assert out.shape == (224, 224, 3) and out.dtype == np.float32
        found = _find_window(out, reference)
        assert found is not None, f"seed pair [7, {k}]: not a window of the resized image"
        seen.add(found)
    assert {f for _, _, f in seen} == {False, True}
    assert len({(r, c) for r, c, _ in seen}) > 4
    again = train_preprocess(tf.constant(image), tf.constant([7, 3]))
    np.testing.assert_array_equal(again, train_preprocess(tf.constant(image), [7, 3]))


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
    return encode_jpeg(_image(shape, seed))


@pytest.mark.parametrize("bad_label", [0, 1001])
def test_label_out_of_range_raises_and_is_found(tmp_path, bad_label):
    images = [_image((60, 50), k) for k in range(5)]
    labels = [4, 9, 12, bad_label, 600]
    paths = write_shards(tmp_path, "validation", images, labels, num_shards=2)  # 2 + 3
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        list(ind.eval_dataset(tmp_path, batch_size=2).as_numpy_iterator())
    text = str(info.value)
    assert f"label] [{bad_label}]" in text and paths[1] in text and "[record] [1]" in text
    assert find_bad_record(paths[:1]) is None
    assert find_bad_record(paths) == (f"{paths[1]}: record 1: label {bad_label} "
                                          f"outside 1..1000")
    write_shards(tmp_path, "train", images, labels, num_shards=2)
    with pytest.raises(tf.errors.InvalidArgumentError):
        for _ in ind.train_dataset(tmp_path, batch_size=2, seed=0, shuffle_buffer=4).take(5):
            pass


def test_corrupt_jpeg_raises_and_is_found(tmp_path):
    good = _good_jpeg_bytes()
    images = [good, _good_jpeg_bytes(seed=1), good[:len(good) // 2], good]
    paths = write_shards(tmp_path, "validation", images, [1, 2, 3, 4], num_shards=1)
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(ind.eval_dataset(tmp_path, batch_size=4).as_numpy_iterator())
    message = find_bad_record(paths)
    assert message.startswith(f"{paths[0]}: record 2: image/encoded ({len(good) // 2} bytes) "
                              f"is not a decodable JPEG")
    assert "\n" not in message
    assert find_bad_record(paths, check_images=False) is None  # labels only


def test_find_bad_record_other_problems(tmp_path):
    paths = write_shards(tmp_path, "train", [_image((40, 30), k) for k in range(6)],
                             list(range(1, 7)), num_shards=2)
    assert find_bad_record(paths) is None
    # a truncated shard: the last record cannot be read
    data = open(paths[1], "rb").read()
    with open(paths[1], "wb") as f:
        f.write(data[:-10])
    message = find_bad_record(paths)
    assert message.startswith(f"{paths[1]}: record 2: cannot read the record")
    # a shard whose first record has no label, after a good shard
    with tf.io.TFRecordWriter(paths[1]) as writer:
        writer.write(_example_without_label())
    assert find_bad_record(paths) == f"{paths[1]}: record 0: no image/class/label feature"
    assert find_bad_record([tmp_path / "gone"]) == f"{tmp_path / 'gone'}: file not found"


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


# --------------------------------------------------------------------------- the DataSource


def test_open_source_checks_the_shards_first(tmp_path):
    imagenet = get_dataset("imagenet")
    message = _data_error(imagenet.open, "tfrecord", tmp_path / "absent")
    assert str(tmp_path / "absent") in message
    write_shards(tmp_path, "train", [_image((40, 30), 0)], [5], num_shards=1)
    message = _data_error(imagenet.open, "tfrecord", tmp_path)
    assert message == f"no files match {tmp_path / 'validation-*'}"
    (tmp_path / "val_only").mkdir()
    write_shards(tmp_path / "val_only", "validation", [_image((40, 30), 0)], [5], num_shards=1)
    message = _data_error(imagenet.open, "tfrecord", tmp_path / "val_only")
    assert message == f"no files match {tmp_path / 'val_only' / 'train-*'}"
    assert "--data_dir" in _data_error(ind.open_source, imagenet, "tfrecord", None, None)
    assert "'auto'" in _data_error(imagenet.open, "auto", tmp_path)
    assert "'jpeg'" in _data_error(ind.open_source, imagenet, "jpeg", tmp_path, None)
    assert str(tmp_path / "gone") in _data_error(imagenet.open, "tfds", tmp_path / "gone")
    assert "--data_dir" in _data_error(ind.open_source, imagenet, "tfds", None, None)


def test_open_source_train_and_test_batches(shards, tmp_path):
    imagenet = get_dataset("imagenet")
    source = imagenet.open("tfrecord", shards.folder)
    assert source.checkpoint_input is False
    assert "3 train-*" in source.description and "3 validation-*" in source.description
    assert shards.folder in source.description
    # default_dir is used when data_dir is None
    assert ind.open_source(imagenet, "tfrecord", None, shards.folder).data_dir == shards.folder

    batches = list(source.test_dataset(4).as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(4, 224, 224, 3), (3, 224, 224, 3)]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]),
                                  np.array(VAL_LABELS) - 1)
    np.testing.assert_allclose(batches[1][0][0], _reference_256(shards.val_decoded[4][0])
                               [16:240, 16:240], rtol=0, atol=2e-3)

    images, labels = next(source.train_dataset(5, seed=3, start=2, shuffle_buffer=6)
                          .as_numpy_iterator())
    assert images.shape == (5, 224, 224, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32 and set(labels) <= {v - 1 for v in TRAIN_LABELS}
    k = TRAIN_LABELS.index(int(labels[0]) + 1)
    assert _find_window(images[0], _reference_256(shards.train_decoded[k][0])) is not None
    # seeded with seed + start: a resumed run draws a fresh, reproducible stream
    same = next(source.train_dataset(5, seed=5, start=0, shuffle_buffer=6).as_numpy_iterator())
    np.testing.assert_array_equal(same[0], images)
    first = next(source.train_dataset(5, seed=3, start=0, shuffle_buffer=6).as_numpy_iterator())
    assert not np.array_equal(first[0], images)
    assert "'flip'" in _data_error(source.train_dataset, 5, 3, augmentation="flip")
    assert "start" in _data_error(source.train_dataset, 5, 3, start=-1)


def test_explain_names_the_bad_record(tmp_path, capsys):
    good = _good_jpeg_bytes()
    images = [good, _good_jpeg_bytes(seed=1), good, good[:100], good, good]
    paths = write_shards(tmp_path, "train", images, [1, 2, 3, 4, 5, 6], num_shards=2)
    write_shards(tmp_path, "validation", [good], [7], num_shards=1)
    source = get_dataset("imagenet").open("tfrecord", tmp_path)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        for _ in source.train_dataset(2, seed=0, shuffle_buffer=1).take(6):
            pass
    capsys.readouterr()
    line = source.explain(info.value)
    assert line.startswith(f"{paths[1]}: record 0: image/encoded (100 bytes) is not a "
                           f"decodable JPEG")
    assert "\n" not in line
    assert "scanning the shards" in capsys.readouterr().err
    # tfds: the error's first line, no scan
    tfds_source = ind.ImageNetSource("tfds", str(tmp_path))
    error = tf.errors.InvalidArgumentError(None, None, "label 1000 outside\nmore detail")
    assert tfds_source.explain(error) == "label 1000 outside"
