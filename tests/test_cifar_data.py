"""CIFAR-100 input (``dcnet_keras.data.cifar`` with the ``cifar100`` format) and the shared
CIFAR pieces: file decoding and checks, source detection, the three augmentations,
determinism, iterator checkpoints, the ordered test pass and the synthetic set, each checked
against an independent NumPy computation on files the test writes. CIFAR-10 files, the tfds
path of both datasets and the offline failure: ``test_cifar10_data.py``."""

import os
import pickle
import types

import numpy as np
from assertions import one_line_error
import tensorflow as tf

from dcnet_keras.data import cifar, cifar_pipelines as pipes, synthetic, throughput
from dcnet_keras.data.errors import DataError

FMT = cifar.CIFAR100


def _records(fine, coarse=None, seed=0):
    """Raw binary records and the expected HWC images (computed pixel by pixel in NumPy)."""
    rng = np.random.default_rng(seed)
    n = len(fine)
    coarse = rng.integers(0, 20, n) if coarse is None else coarse
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    raw = np.concatenate([np.stack([coarse, fine], 1).astype(np.uint8), pixels], 1)
    expected = np.zeros((n, 32, 32, 3), np.uint8)
    for c in range(3):
        for y in range(32):
            expected[:, y, :, c] = pixels[:, c * 1024 + y * 32:c * 1024 + y * 32 + 32]
    return raw.tobytes(), expected


def _write_binary_folder(folder, n_train=5, n_test=3):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n, seed in (("train.bin", n_train, 1), ("test.bin", n_test, 2)):
        fine = np.random.default_rng(seed + 10).integers(0, 100, n)
        raw, images = _records(fine, seed=seed)
        (folder / name).write_bytes(raw)
        out[name] = (images, fine)
    return out


def _write_pickle_folder(folder, n_train=4, n_test=2):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n, seed in (("train", n_train, 3), ("test", n_test, 4)):
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        data = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # channel-major rows
        batch = {b"data": data, b"fine_labels": fine, b"coarse_labels": [0] * n,
                 b"filenames": [b"x.png"] * n}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        out[name] = (images, np.array(fine))
    return out


def _error(fn, *args, **kwargs):
    return one_line_error(DataError, fn, *args, **kwargs)


# --------------------------------------------------------------------------- readers


def test_read_binary_decodes_fine_label_and_chw_to_hwc(tmp_path):
    fine = np.array([7, 0, 99, 42])
    coarse = np.array([19, 3, 0, 99 % 20])
    raw, expected = _records(fine, coarse)
    path = tmp_path / "x.bin"
    path.write_bytes(raw)
    images, labels = FMT.read_binary(path)
    assert images.dtype == np.uint8 and images.shape == (4, 32, 32, 3)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, fine)  # byte 1, not the coarse byte 0
    np.testing.assert_array_equal(images, expected)
    # one pixel straight from the byte offsets: record 2, channel 1 (green), row 5, column 30
    assert images[2, 5, 30, 1] == raw[2 * 3074 + 2 + 1 * 1024 + 5 * 32 + 30]


def test_read_binary_empty_file_has_no_records(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    images, labels = FMT.read_binary(path)
    assert images.shape == (0, 32, 32, 3) and labels.shape == (0,)


def test_read_binary_bad_size(tmp_path):
    raw, _ = _records([1, 2])
    path = tmp_path / "train.bin"
    path.write_bytes(raw + b"12345")
    message = _error(FMT.read_binary, path)
    assert str(path) in message and str(2 * 3074 + 5) in message and "3074" in message


def test_read_binary_label_out_of_range(tmp_path):
    raw, _ = _records([1, 100, 5])
    path = tmp_path / "test.bin"
    path.write_bytes(raw)
    message = _error(FMT.read_binary, path)
    assert str(path) in message and "record 1" in message and "100" in message


def test_read_binary_missing_file(tmp_path):
    message = _error(FMT.read_binary, tmp_path / "nope.bin")
    assert str(tmp_path / "nope.bin") in message


def test_read_pickle(tmp_path):
    written = _write_pickle_folder(tmp_path / "py")
    for split in ("train", "test"):
        images, labels = FMT.read_pickle(tmp_path / "py" / split)
        assert images.dtype == np.uint8 and labels.dtype == np.int32
        np.testing.assert_array_equal(images, written[split][0])
        np.testing.assert_array_equal(labels, written[split][1])


def test_read_pickle_errors(tmp_path):
    folder = tmp_path / "py"
    _write_pickle_folder(folder)
    with open(folder / "test", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, f)
    message = _error(FMT.read_pickle, folder / "test")
    assert str(folder / "test") in message and "fine_labels" in message
    with open(folder / "test", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 250]}, f)
    message = _error(FMT.read_pickle, folder / "test")
    assert str(folder / "test") in message and "record 1" in message and "250" in message
    (folder / "test").write_bytes(b"not a pickle")
    message = _error(FMT.read_pickle, folder / "test")
    assert str(folder / "test") in message and "unpickle" in message
    message = _error(cifar.load, "cifar100", "pickle", tmp_path / "missing")
    assert str(tmp_path / "missing") in message


# --------------------------------------------------------------------------- loading


def test_load_binary_folder_and_errors(tmp_path):
    written = _write_binary_folder(tmp_path / "bin")
    data = cifar.load("cifar100", "binary", data_dir=tmp_path / "bin")
    np.testing.assert_array_equal(data.train_images, written["train.bin"][0])
    np.testing.assert_array_equal(data.train_labels, written["train.bin"][1])
    np.testing.assert_array_equal(data.test_images, written["test.bin"][0])
    np.testing.assert_array_equal(data.test_labels, written["test.bin"][1])
    assert data.train_labels.dtype == np.int32 and data.num_classes == 100
    assert data.kind == "binary" and data.checkpoint_input is True
    assert "CIFAR-100 binary" in data.description and str(tmp_path / "bin") in data.description

    message = _error(cifar.load, "cifar100", "binary", data_dir=tmp_path / "absent")
    assert str(tmp_path / "absent") in message
    # the missing file is named before the (truncated) train.bin is read
    (tmp_path / "bin" / "train.bin").write_bytes(b"x" * 100)
    os.remove(tmp_path / "bin" / "test.bin")
    message = _error(cifar.load, "cifar100", "binary", data_dir=tmp_path / "bin")
    assert str(tmp_path / "bin" / "test.bin") in message and "not found" in message


def test_load_empty_train_bin_names_the_file(tmp_path):
    _write_binary_folder(tmp_path / "bin")
    (tmp_path / "bin" / "train.bin").write_bytes(b"")
    message = _error(cifar.load, "cifar100", "binary", tmp_path / "bin")
    assert message == f"{tmp_path / 'bin' / 'train.bin'}: no images"


def test_load_auto_detects_format(tmp_path):
    _write_binary_folder(tmp_path / "bin")
    written = _write_pickle_folder(tmp_path / "py")
    assert cifar.load("cifar100", "auto", data_dir=tmp_path / "bin").kind == "binary"
    data = cifar.load("cifar100", "auto", data_dir=tmp_path / "py")
    assert data.kind == "pickle" and "python" in data.description
    np.testing.assert_array_equal(data.test_images, written["test"][0])
    # the folders the archives unpack into, one level down
    _write_binary_folder(tmp_path / "parent" / "cifar-100-binary")
    data = cifar.load("cifar100", "auto", data_dir=tmp_path / "parent")
    assert data.kind == "binary" and "cifar-100-binary" in data.description
    _write_pickle_folder(tmp_path / "parent_py" / "cifar-100-python")
    data = cifar.load("cifar100", "auto", data_dir=tmp_path / "parent_py")
    assert data.kind == "pickle" and "cifar-100-python" in data.description
    # default folder when no data_dir is given
    data = cifar.load("cifar100", "auto", default_dir=str(tmp_path / "bin"))
    assert data.train_images.shape == (5, 32, 32, 3)
    (tmp_path / "empty").mkdir()
    message = _error(cifar.load, "cifar100", "auto", data_dir=tmp_path / "empty")
    assert str(tmp_path / "empty") in message and "train.bin" in message
    message = _error(cifar.load, "cifar100", "auto", data_dir=tmp_path / "absent")
    assert str(tmp_path / "absent") in message


def test_unknown_dataset_and_source_names():
    message = _error(cifar.load, "cifar100", "cifar10")
    assert "--source" in message and "'cifar10'" in message
    message = _error(cifar.load, "svhn")
    assert "svhn" in message and "cifar10" in message and "cifar100" in message
    assert issubclass(DataError, ValueError)


def _fake_tfds(calls, fail=None):
    """A stand-in for the tensorflow_datasets module: ``load`` returns each split as a list of
    batches (train: 4 + 2 examples, test: 4), ``as_numpy`` turns the tensors to arrays."""
    rng = np.random.default_rng(5)
    splits = [[{"image": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                "label": rng.integers(0, 100, n), "coarse_label": rng.integers(0, 20, n)}
               for n in sizes] for sizes in ((4, 2), (4,))]

    def load(name, **kwargs):
        calls.append((name, kwargs))
        if fail is not None:
            raise fail
        return [[{k: tf.constant(v) for k, v in b.items()} for b in split] for split in splits]

    def as_numpy(batches):
        return [{k: v.numpy() for k, v in b.items()} for b in batches]

    return types.SimpleNamespace(load=load, as_numpy=as_numpy), splits


def test_tfds_path_and_auto_fallback(tmp_path, monkeypatch):
    calls = []
    fake, splits = _fake_tfds(calls)
    monkeypatch.setattr(cifar, "_import_tfds", lambda: fake)
    data = cifar.load("cifar100", "auto", default_dir=str(tmp_path / "absent"))
    assert calls == [("cifar100", dict(split=["train", "test"], batch_size=cifar.TFDS_READ_BATCH,
                                       as_supervised=False, data_dir=None))]
    np.testing.assert_array_equal(data.train_images,
                                  np.concatenate([b["image"] for b in splits[0]]))
    np.testing.assert_array_equal(data.train_labels,
                                  np.concatenate([b["label"] for b in splits[0]]))
    np.testing.assert_array_equal(data.test_labels, splits[1][0]["label"])
    assert data.train_labels.dtype == np.int32 and "cifar100" in data.description
    assert data.kind == "tfds"

    calls.clear()
    fake, _ = _fake_tfds(calls, fail=ConnectionError("no route\nto host"))
    monkeypatch.setattr(cifar, "_import_tfds", lambda: fake)
    message = _error(cifar.load, "cifar100", "tfds", data_dir=tmp_path)
    assert "--data_dir" in message and "--source synthetic" in message
    assert "ConnectionError: no route" in message and "train.bin" in message
    assert calls[0][1]["data_dir"] == str(tmp_path)


def test_synthetic_source():
    data = cifar.load("cifar100", "synthetic", data_dir="/ignored")
    assert data.train_images.shape == (5000, 32, 32, 3) and data.test_images.shape[0] == 1000
    assert data.kind == "synthetic" and "NOT CIFAR-100" in data.description
    assert data.num_classes == 100 and set(np.unique(data.train_labels)) == set(range(100))
    expected = synthetic.synthetic_cifar(5000, 1000, 100, seed=0)
    for got, want in zip((data.train_images, data.train_labels, data.test_images,
                          data.test_labels), expected):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- synthetic set


def test_synthetic_shapes_determinism_and_learnability():
    k = 20
    a = synthetic.synthetic_cifar(num_train=1000, num_test=400, num_classes=k, seed=3)
    b = synthetic.synthetic_cifar(num_train=1000, num_test=400, num_classes=k, seed=3)
    c = synthetic.synthetic_cifar(num_train=1000, num_test=400, num_classes=k, seed=4)
    xtr, ytr, xte, yte = a
    assert xtr.shape == (1000, 32, 32, 3) and xte.shape == (400, 32, 32, 3)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.int32 and yte.dtype == np.int32
    assert set(np.unique(ytr)) == set(range(k)) and yte.min() >= 0 and yte.max() < k
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(xtr, c[0])
    assert 40 < xtr.std() < 90  # not flat, not saturated
    # nearest class mean on raw pixels, fitted on train, scored on test
    flat_tr = xtr.reshape(len(xtr), -1).astype(np.float64)
    flat_te = xte.reshape(len(xte), -1).astype(np.float64)
    means = np.stack([flat_tr[ytr == j].mean(0) for j in range(k)])
    dist = ((flat_te[:, None, :] - means[None]) ** 2).sum(-1)
    accuracy = np.mean(dist.argmin(1) == yte)
    assert accuracy > 10.0 / k, accuracy
    # and a random relabelling is at chance: the accuracy comes from the classes, not the test
    shuffled = np.random.default_rng(0).permutation(ytr)
    means = np.stack([flat_tr[shuffled == j].mean(0) for j in range(k)])
    dist = ((flat_te[:, None, :] - means[None]) ** 2).sum(-1)
    assert np.mean(dist.argmin(1) == yte) < 3.0 / k


def test_synthetic_100_classes_test_set_independent_of_train_size():
    _, _, xte1, yte1 = synthetic.synthetic_cifar(num_train=10, num_test=300, seed=0)
    xtr, ytr, xte2, yte2 = synthetic.synthetic_cifar(num_train=2000, num_test=300, seed=0)
    np.testing.assert_array_equal(xte1, xte2)
    np.testing.assert_array_equal(yte1, yte2)
    flat_tr = xtr.reshape(len(xtr), -1).astype(np.float32)
    flat_te = xte2.reshape(len(xte2), -1).astype(np.float32)
    means = np.stack([flat_tr[ytr == j].mean(0) for j in range(100)])
    d = (flat_te ** 2).sum(1)[:, None] - 2 * flat_te @ means.T + (means ** 2).sum(1)[None]
    assert np.mean(d.argmin(1) == yte2) > 0.2  # chance is 0.01


def test_synthetic_10_classes_balanced_and_learnable():
    xtr, ytr, xte, yte = synthetic.synthetic_cifar(num_train=500, num_test=200, num_classes=10,
                                                   seed=0)
    np.testing.assert_array_equal(np.bincount(ytr), [50] * 10)
    np.testing.assert_array_equal(np.bincount(yte), [20] * 10)
    flat_tr = xtr.reshape(len(xtr), -1).astype(np.float64)
    flat_te = xte.reshape(len(xte), -1).astype(np.float64)
    means = np.stack([flat_tr[ytr == j].mean(0) for j in range(10)])
    dist = ((flat_te[:, None, :] - means[None]) ** 2).sum(-1)
    assert np.mean(dist.argmin(1) == yte) > 0.5  # chance is 0.1
    source = cifar.load("cifar10", "synthetic")
    assert source.num_classes == 10 and "NOT CIFAR-10" in source.description
    assert source.train_labels.max() == 9 and source.train_images.shape == (5000, 32, 32, 3)


def test_synthetic_bad_arguments():
    assert "num_classes" in _error(synthetic.synthetic_cifar, num_classes=0)
    assert "-1" in _error(synthetic.synthetic_cifar, num_train=-1)


# --------------------------------------------------------------------------- train pipeline


def _distinct_images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _batches(ds, count):
    it = iter(ds)
    return [tuple(t.numpy() for t in next(it)) for _ in range(count)]


def test_augmentation_matches_numpy_symmetric_pad_crop_flip():
    n = 8
    images = _distinct_images(n)
    labels = np.arange(n, dtype=np.int32)  # label = index of the source image
    ds = pipes.train_dataset(images, labels, batch_size=8, seed=11, shuffle_buffer=8)
    offsets, flips = set(), set()
    seen = np.zeros(n, int)
    for x, y in _batches(ds, 6):
        assert x.dtype == np.float32 and x.shape == (8, 32, 32, 3) and y.dtype == np.int32
        for image, label in zip(x, y):
            seen[label] += 1
            padded = np.pad(images[label], ((4, 4), (4, 4), (0, 0)), mode="symmetric")
            matches = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (0, 1)
                       if np.array_equal(image, (padded[dy:dy + 32, dx:dx + 32, :][:, ::-1]
                                                 if flip else padded[dy:dy + 32, dx:dx + 32]))]
            assert len(matches) == 1, (label, matches)
            offsets.add(matches[0][:2])
            flips.add(matches[0][2])
    assert len(offsets) > 10 and flips == {0, 1}
    assert seen.sum() == 48 and seen.min() > 0  # all images come through the shuffle


def test_symmetric_padding_is_not_reflect():
    # guards the check above: REFLECT and SYMMETRIC padding differ on these images
    img = _distinct_images(1)[0]
    assert not np.array_equal(np.pad(img, ((4, 4), (4, 4), (0, 0)), mode="symmetric"),
                              np.pad(img, ((4, 4), (4, 4), (0, 0)), mode="reflect"))


def test_train_dataset_determinism_and_seed_dependence():
    images = _distinct_images(64, seed=1)
    labels = np.arange(64, dtype=np.int32) % 100
    a = _batches(pipes.train_dataset(images, labels, 16, seed=5, shuffle_buffer=32), 6)
    b = _batches(pipes.train_dataset(images, labels, 16, seed=5, shuffle_buffer=32), 6)
    c = _batches(pipes.train_dataset(images, labels, 16, seed=6, shuffle_buffer=32), 6)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not all(np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))
    assert not all(np.array_equal(ya, yc) for (_, ya), (_, yc) in zip(a, c))
    # the stream is endless and reshuffled: 6 batches of 16 cover 1.5 epochs, in a new order
    order = np.concatenate([y for _, y in a])
    assert order.shape == (96,) and not np.array_equal(order[:32], order[64:96])


def test_train_iterator_checkpoint_restore(tmp_path):
    images = _distinct_images(40, seed=2)
    labels = np.arange(40, dtype=np.int32)
    ds = pipes.train_dataset(images, labels, 8, seed=7, shuffle_buffer=20)
    it = iter(ds)
    for _ in range(3):
        next(it)
    path = tf.train.Checkpoint(iterator=it).save(str(tmp_path / "ckpt"))
    expected = [tuple(t.numpy() for t in next(it)) for _ in range(2)]
    fresh = iter(pipes.train_dataset(images, labels, 8, seed=7, shuffle_buffer=20))
    tf.train.Checkpoint(iterator=fresh).restore(path).assert_consumed()
    got = [tuple(t.numpy() for t in next(fresh)) for _ in range(2)]
    for (xe, ye), (xg, yg) in zip(expected, got):
        np.testing.assert_array_equal(xe, xg)
        np.testing.assert_array_equal(ye, yg)
    # and not merely the start of the stream again
    start = _batches(pipes.train_dataset(images, labels, 8, seed=7, shuffle_buffer=20), 1)[0]
    assert not np.array_equal(start[0], got[0][0])


# --------------------------------------------------------------------------- test pipeline


def test_test_dataset_one_ordered_pass_with_partial_batch():
    images = _distinct_images(250, seed=3)
    labels = (np.arange(250) * 7 % 100).astype(np.int32)
    ds = pipes.test_dataset(images, labels, batch_size=100)
    for _ in range(2):  # every iterator is a fresh, identical pass
        batches = [tuple(t.numpy() for t in b) for b in ds]
        assert [x.shape[0] for x, _ in batches] == [100, 100, 50]
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        assert x.dtype == np.float32 and y.dtype == np.int32
        np.testing.assert_array_equal(x, images.astype(np.float32))
        np.testing.assert_array_equal(y, labels)


def test_pipeline_throughput_counts_images():
    images = _distinct_images(30)
    ds = pipes.test_dataset(images, np.zeros(30, np.int32), batch_size=10)
    assert throughput.pipeline_throughput(ds, batches=5, warmup=1) > 0
    assert throughput.pipeline_throughput(ds, batches=5, warmup=3) == 0.0  # nothing left to time


# --------------------------------------------------------------------------- augmentations


def _source_index(image, images):
    """Index of the image in ``images`` equal to ``image`` (-1: none)."""
    hits = np.flatnonzero((images == image).reshape(len(images), -1).all(1))
    return int(hits[0]) if hits.size else -1


def test_flip_augmentation_is_identity_or_mirror_only():
    n = 16
    images = _distinct_images(n, seed=4)
    labels = np.arange(n, dtype=np.int32)
    flip_batches = _batches(pipes.train_dataset(images, labels, 8, seed=3, shuffle_buffer=16,
                                                augmentation="flip"), 6)
    full_batches = _batches(pipes.train_dataset(images, labels, 8, seed=3, shuffle_buffer=16), 6)
    mirrored = []
    for (x, y), (xf, yf) in zip(flip_batches, full_batches):
        assert x.dtype == np.float32 and x.shape == (8, 32, 32, 3)
        np.testing.assert_array_equal(y, yf)  # same shuffle as pad_crop_flip
        for image, label, full in zip(x, y, xf):
            plain = images[label].astype(np.float32)
            is_plain = np.array_equal(image, plain)
            is_mirror = np.array_equal(image, plain[:, ::-1])
            assert is_plain != is_mirror, label
            mirrored.append(is_mirror)
            # pad_crop_flip with the same seed flips the same images (its crop is some window
            # of the padded image, flipped or not: find which)
            padded = np.pad(images[label], ((4, 4), (4, 4), (0, 0)), mode="symmetric")
            windows = [padded[dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
            full_is_mirror = any(np.array_equal(full, w[:, ::-1]) for w in windows)
            assert full_is_mirror == is_mirror
    assert any(mirrored) and not all(mirrored)


def test_none_augmentation_leaves_images_unchanged():
    n = 12
    images = _distinct_images(n, seed=6)
    labels = (np.arange(n) * 3 % 10).astype(np.int32)
    seen = []
    for x, y in _batches(pipes.train_dataset(images, labels, 6, seed=1, shuffle_buffer=12,
                                             augmentation="none"), 4):
        assert x.dtype == np.float32 and y.dtype == np.int32
        for image, label in zip(x, y):
            index = _source_index(image, images.astype(np.float32))
            assert index >= 0 and labels[index] == label
            seen.append(index)
    # every image comes through the shuffle (which mixes across epochs), not in file order
    assert len(seen) == 24 and set(seen) == set(range(12)) and seen[:12] != list(range(12))


def test_unknown_augmentation():
    images = _distinct_images(4)
    message = _error(pipes.train_dataset, images, np.zeros(4, np.int32), 2, 0,
                     augmentation="crop")
    assert "augmentation" in message and "'crop'" in message
    assert "flip" in message and "none" in message


def test_pipeline_argument_errors():
    images = _distinct_images(4)
    assert "batch_size" in _error(pipes.test_dataset, images, np.zeros(4, np.int32), 0)
    assert "no images" in _error(pipes.test_dataset, images[:0], np.zeros(0, np.int32))
    assert "labels" in _error(pipes.train_dataset, images, np.zeros(3, np.int32), 2, 0)
    assert "uint8" in _error(pipes.test_dataset, images.astype(np.float32),
                             np.zeros(4, np.int32))


def test_source_pipelines(tmp_path):
    written = _write_binary_folder(tmp_path / "bin", n_train=6, n_test=5)
    source = cifar.load("cifar100", "binary", tmp_path / "bin")
    test = [tuple(t.numpy() for t in b) for b in source.test_dataset(2)]
    assert [x.shape[0] for x, _ in test] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in test]),
                                  written["test.bin"][0].astype(np.float32))
    # start is ignored (the iterator is checkpointed): the same stream from any start
    a = _batches(source.train_dataset(3, seed=2, start=0, augmentation="none"), 3)
    b = _batches(source.train_dataset(3, seed=2, start=500, augmentation="none"), 3)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for x, y in a:
        for image, label in zip(x, y):
            index = _source_index(image, written["train.bin"][0].astype(np.float32))
            assert index >= 0 and written["train.bin"][1][index] == label
    error = tf.errors.InvalidArgumentError(None, None, "bad thing\nmore detail")
    assert source.explain(error) == "bad thing"
