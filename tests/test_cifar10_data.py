"""CIFAR-10 files (``dcnet_keras.data.cifar`` with the ``cifar10`` format) on folders the test
writes in the real formats with NumPy; the one-line errors; auto detection of every layout;
the tfds path of CIFAR-10 and CIFAR-100 under ``tfds.testing.mock_data``; and an offline tfds
run ending in one ``DataError`` line, never an import error."""

import os
import pickle
import socket

import numpy as np
import pytest
from assertions import one_line_error

from dcnet_keras.data import cifar
from dcnet_keras.data.errors import DataError
from dcnet_keras.data.registry import get_dataset

FMT = cifar.CIFAR10
TRAIN_BIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
TRAIN_PY = [f"data_batch_{i}" for i in range(1, 6)]


def _error(fn, *args, **kwargs):
    return one_line_error(DataError, fn, *args, **kwargs)


def _hwc(pixels):
    """[N, 3072] channel-major rows -> [N, 32, 32, 3], pixel by pixel from the byte offsets."""
    out = np.zeros((len(pixels), 32, 32, 3), np.uint8)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                out[:, y, x, c] = pixels[:, c * 1024 + y * 32 + x]
    return out


def _records(labels, seed):
    """One label byte + 3072 image bytes per record; returns (bytes, expected HWC images)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    raw = np.concatenate([np.asarray(labels, np.uint8)[:, None], pixels], 1)
    return raw.tobytes(), _hwc(pixels)


def _write_binary(folder, sizes=(3, 2, 4, 1, 2), n_test=3):
    """data_batch_1.bin .. data_batch_5.bin with ``sizes`` records, test_batch.bin; returns
    name -> (images, labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, (name, n) in enumerate(zip(TRAIN_BIN + ["test_batch.bin"], list(sizes) + [n_test])):
        labels = np.random.default_rng(100 + k).integers(0, 10, n)
        raw, images = _records(labels, seed=k)
        (folder / name).write_bytes(raw)
        out[name] = (images, labels)
    return out


def _write_pickles(folder, sizes=(2, 3, 1, 2, 2), n_test=3):
    """The python version: dicts with bytes keys as the archive's (Python 2) pickles have."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, (name, n) in enumerate(zip(TRAIN_PY + ["test_batch"], list(sizes) + [n_test])):
        rng = np.random.default_rng(200 + k)
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batch = {b"batch_label": f"batch {k}".encode(), b"labels": labels, b"data": pixels,
                 b"filenames": [b"x.png"] * n}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        out[name] = (_hwc(pixels), np.array(labels))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"] * 10}))
    return out


def _concat(written, names):
    return (np.concatenate([written[n][0] for n in names]),
            np.concatenate([written[n][1] for n in names]))


# --------------------------------------------------------------------------- readers


def test_read_binary_record_layout(tmp_path):
    labels = np.array([9, 0, 3, 7])
    raw, expected = _records(labels, seed=1)
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(raw)
    images, got = FMT.read_binary(path)
    assert FMT.record_bytes == 3073
    assert images.dtype == np.uint8 and images.shape == (4, 32, 32, 3) and got.dtype == np.int32
    np.testing.assert_array_equal(got, labels)
    np.testing.assert_array_equal(images, expected)
    # record 1, channel 2 (blue), row 7, column 3, straight from the byte offset
    assert images[1, 7, 3, 2] == raw[1 * 3073 + 1 + 2 * 1024 + 7 * 32 + 3]


def test_binary_folder_concatenates_the_five_batches_in_order(tmp_path):
    written = _write_binary(tmp_path / "bin")
    data = cifar.load("cifar10", "binary", tmp_path / "bin")
    images, labels = _concat(written, TRAIN_BIN)
    assert data.train_images.shape == (12, 32, 32, 3) and data.train_labels.dtype == np.int32
    np.testing.assert_array_equal(data.train_images, images)
    np.testing.assert_array_equal(data.train_labels, labels)
    np.testing.assert_array_equal(data.test_images, written["test_batch.bin"][0])
    np.testing.assert_array_equal(data.test_labels, written["test_batch.bin"][1])
    assert data.num_classes == 10 and data.kind == "binary" and data.name == "cifar10"
    assert data.description == f"CIFAR-10 binary files in {tmp_path / 'bin'}"


def test_pickle_folder(tmp_path):
    written = _write_pickles(tmp_path / "py")
    data = cifar.load("cifar10", "pickle", tmp_path / "py")
    images, labels = _concat(written, TRAIN_PY)
    np.testing.assert_array_equal(data.train_images, images)
    np.testing.assert_array_equal(data.train_labels, labels)
    np.testing.assert_array_equal(data.test_images, written["test_batch"][0])
    np.testing.assert_array_equal(data.test_labels, written["test_batch"][1])
    assert data.kind == "pickle" and "CIFAR-10 python-version files" in data.description
    assert data.train_images.dtype == np.uint8 and data.test_labels.dtype == np.int32


# --------------------------------------------------------------------------- errors


def test_truncated_batch_file(tmp_path):
    _write_binary(tmp_path / "bin")
    path = tmp_path / "bin" / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-10])
    message = _error(cifar.load, "cifar10", "binary", tmp_path / "bin")
    assert str(path) in message and str(2 * 3073 - 10) in message and "3073" in message


def test_label_10_is_out_of_range(tmp_path):
    _write_binary(tmp_path / "bin")
    raw, _ = _records([1, 4, 10, 2], seed=9)
    path = tmp_path / "bin" / "data_batch_4.bin"
    path.write_bytes(raw)
    message = _error(cifar.load, "cifar10", "binary", tmp_path / "bin")
    assert str(path) in message and "record 2" in message and "label 10" in message
    assert "0..9" in message


def test_missing_batch_file_is_named_before_any_is_read(tmp_path):
    _write_binary(tmp_path / "bin")
    os.remove(tmp_path / "bin" / "data_batch_3.bin")
    # batch 1 is broken too: the missing file must be what is reported
    (tmp_path / "bin" / "data_batch_1.bin").write_bytes(b"\0" * 100)
    for source in ("binary", "auto"):
        message = _error(cifar.load, "cifar10", source, tmp_path / "bin")
        assert str(tmp_path / "bin" / "data_batch_3.bin") in message and "not found" in message
    _write_pickles(tmp_path / "py")
    os.remove(tmp_path / "py" / "test_batch")
    message = _error(cifar.load, "cifar10", "auto", tmp_path / "py")
    assert str(tmp_path / "py" / "test_batch") in message


def test_empty_batch_file(tmp_path):
    _write_binary(tmp_path / "bin")
    path = tmp_path / "bin" / "data_batch_5.bin"
    path.write_bytes(b"")
    assert _error(cifar.load, "cifar10", "binary", tmp_path / "bin") == f"{path}: no images"


def test_pickle_without_the_expected_keys(tmp_path):
    _write_pickles(tmp_path / "py")
    path = tmp_path / "py" / "data_batch_2"
    with open(path, "wb") as f:  # a CIFAR-100 style pickle where CIFAR-10 is expected
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}, f)
    message = _error(cifar.load, "cifar10", "pickle", tmp_path / "py")
    assert str(path) in message and "'labels'" in message
    with open(path, "wb") as f:
        pickle.dump({b"labels": [0, 1]}, f)
    message = _error(cifar.load, "cifar10", "pickle", tmp_path / "py")
    assert str(path) in message and "'data'" in message
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, f)
    message = _error(cifar.load, "cifar10", "pickle", tmp_path / "py")
    assert str(path) in message and "2 images but 3 labels" in message


def test_missing_folders(tmp_path):
    message = _error(cifar.load, "cifar10", "binary", tmp_path / "absent")
    assert str(tmp_path / "absent") in message
    message = _error(cifar.load, "cifar10", "pickle", None)
    assert "--data_dir" in message and "pickle" in message


# --------------------------------------------------------------------------- auto detection


def test_auto_detects_every_layout(tmp_path):
    written = _write_binary(tmp_path / "bin")
    _write_pickles(tmp_path / "py")
    _write_binary(tmp_path / "a" / "cifar-10-batches-bin")
    _write_pickles(tmp_path / "b" / "cifar-10-batches-py")
    for folder, kind, shown in ((tmp_path / "bin", "binary", tmp_path / "bin"),
                                (tmp_path / "py", "pickle", tmp_path / "py"),
                                (tmp_path / "a", "binary", tmp_path / "a" / "cifar-10-batches-bin"),
                                (tmp_path / "b", "pickle", tmp_path / "b" / "cifar-10-batches-py")):
        data = cifar.load("cifar10", "auto", folder)
        assert data.kind == kind and str(shown) in data.description, (folder, data)
    # an explicit source also takes the archive's subfolder
    assert cifar.load("cifar10", "binary", tmp_path / "a").train_images.shape[0] == 12
    # the default folder (the original's <repo>/cifar-10-batches-bin) without data_dir
    data = cifar.load("cifar10", "auto", default_dir=str(tmp_path / "bin"))
    np.testing.assert_array_equal(data.train_labels, _concat(written, TRAIN_BIN)[1])
    # nothing there: one line naming the folder and what was expected
    (tmp_path / "empty").mkdir()
    message = _error(cifar.load, "cifar10", "auto", tmp_path / "empty")
    assert str(tmp_path / "empty") in message and "data_batch_1.bin" in message
    assert "cifar-10-batches-bin" in message
    # CIFAR-100 files where CIFAR-10 is asked for
    (tmp_path / "c100").mkdir()
    (tmp_path / "c100" / "train.bin").write_bytes(b"")
    message = _error(cifar.load, "cifar10", "auto", tmp_path / "c100")
    assert "--dataset cifar100" in message


def test_auto_detects_a_tfds_data_dir(tmp_path, monkeypatch):
    (tmp_path / "tfds" / "cifar10").mkdir(parents=True)
    calls = []

    def load_tfds(fmt, data_dir=None):
        calls.append((fmt.name, data_dir))
        return "tfds source"

    monkeypatch.setattr(cifar, "load_tfds", load_tfds)
    assert cifar.load("cifar10", "auto", tmp_path / "tfds") == "tfds source"
    assert calls == [("cifar10", str(tmp_path / "tfds"))]
    # without data_dir and without the default folder: tfds with its default data_dir
    assert cifar.load("cifar10", "auto", None, str(tmp_path / "absent")) == "tfds source"
    assert calls[-1] == ("cifar10", None)
    assert _error(cifar.load, "cifar100", "auto", tmp_path / "tfds")  # cifar10 is not cifar100


# --------------------------------------------------------------------------- tfds


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_tfds_path_under_mock_data(tmp_path, name, classes):
    tfds = pytest.importorskip("tensorflow_datasets")
    spec = get_dataset(name)
    with tfds.testing.mock_data(num_examples=12):
        source = cifar.open_source(spec, "tfds", str(tmp_path), None)
        via_registry = spec.open("tfds", str(tmp_path), None)
    for data in (source, via_registry):
        assert data.kind == "tfds" and data.num_classes == classes and name in data.description
        for images, labels in ((data.train_images, data.train_labels),
                               (data.test_images, data.test_labels)):
            assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
            assert labels.shape == (12,) and labels.dtype == np.int32
            assert labels.min() >= 0 and labels.max() < classes
            assert images.std() > 10  # random pixels, not a zero-filled batch
    x, y = next(iter(source.train_dataset(4, seed=0)))
    assert x.shape == (4, 32, 32, 3) and x.dtype.name == "float32" and y.dtype.name == "int32"
    assert [int(b[0].shape[0]) for b in source.test_dataset(5)] == [5, 5, 2]
    assert not os.listdir(tmp_path)  # the mock wrote nothing and downloaded nothing


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_tfds_offline_ends_in_one_data_error_line(tmp_path, monkeypatch, name):
    """A machine without network: name resolution fails (as in a sandbox or on a plane), so
    tfds gets past its imports and the builder, starts the download, and fails there."""
    pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.core.download import downloader

    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)  # urllib3 would back off for minutes
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    message = _error(cifar.load, name, "tfds", data_dir)
    assert message.startswith(f"could not load tfds '{name}' (data_dir={data_dir}): ")
    assert "name resolution" in message  # it got as far as the download
    assert "--data_dir" in message and message.endswith("or use --source synthetic")
    for import_problem in ("ImportError", "ModuleNotFoundError", "No module named"):
        assert import_problem not in message


def test_tfds_missing_package_is_one_line(monkeypatch):
    def missing():
        raise ModuleNotFoundError("No module named 'importlib_resources'")

    monkeypatch.setattr(cifar, "_import_tfds", missing)
    message = _error(cifar.load, "cifar10", "tfds")
    assert "tfds 'cifar10'" in message and "importlib_resources" in message
    assert "pip install -r requirements.txt" in message and "--source synthetic" in message


def test_open_source_checks_the_spec():
    spec = get_dataset("cifar10")
    assert cifar.open_source(spec, "synthetic", None, None).num_classes == 10
    assert "'svhn'" in _error(cifar.open_source, type("Spec", (), {"name": "svhn"})(),
                              "synthetic", None, None)
