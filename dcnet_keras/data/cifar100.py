"""CIFAR-100 for the CIFAR DCNets: reading, checking, and the train / test pipelines.

Sources (``load_cifar100``):

- ``binary``: the original's format, a folder with ``train.bin`` and ``test.bin`` (records of
  ``RECORD_BYTES`` = 2 label bytes, coarse then fine, and 3072 image bytes, channel-major 3x32x32);
  the original scripts read ``<repo>/cifar-100-binary/``.
- ``pickle``: the "python version" folder (``train`` and ``test`` pickles).
- ``tfds``: ``tensorflow_datasets`` ``cifar100`` (fine ``label`` field; downloads on first use).
- ``synthetic``: a small built-in CIFAR-shaped set with learnable classes, for smoke tests and
  machines without the data. It is NOT CIFAR-100; accuracies on it mean nothing for the paper.

Every problem with the data raises ``DataError`` (a ``ValueError``) with a one-line message that
names the file or the value.

Pipelines (SPEC section 5):

- ``train_dataset``: an endless stream (``repeat``) through a shuffle buffer (the original's
  20000-example ``shuffle_batch`` queue), then per image: SYMMETRIC 4-pixel padding (mirror
  including the edge pixel), a random 32x32 crop and a random horizontal flip, with stateless
  randomness keyed by ``(seed, position in the stream)``, so the result does not depend on the
  number of parallel calls; batches of float32 images in 0..255 and int32 labels, the last
  partial batch dropped. The iterator can be saved with ``tf.train.Checkpoint(iterator=...)``.
- ``test_dataset``: one ordered pass over all images, unchanged (float32), last batch kept.

The model does its own scaling (``(rgb - 127.5) / 128``); nothing here standardises the images.
"""

import dataclasses
import os
import pickle
import time

import numpy as np
import tensorflow as tf

RECORD_BYTES = 3074  # 2 label bytes (coarse, fine) + 3 * 32 * 32 image bytes
LABEL_BYTES = 2
IMAGE_SHAPE = (32, 32, 3)
IMAGE_BYTES = 32 * 32 * 3
NUM_CLASSES = 100
PAD = 4

DATASETS = ("auto", "binary", "pickle", "tfds", "synthetic")
_BINARY_FILES = {"train": "train.bin", "test": "test.bin"}
_PICKLE_FILES = {"train": "train", "test": "test"}


class DataError(ValueError):
    """A problem with the input data; the message is one line naming the file or the value."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


@dataclasses.dataclass
class CifarData:
    """Both splits as NumPy arrays (uint8 [N, 32, 32, 3] images, int32 [N] fine labels)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str

    def __repr__(self):
        return (f"CifarData(train={self.train_images.shape[0]}, test={self.test_images.shape[0]}, "
                f"source={self.source!r})")


# --------------------------------------------------------------------------- readers


def _check_fine_labels(labels, where):
    """int32 copy of ``labels`` after checking that each lies in 0..99."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"{where}: fine labels must be one-dimensional, got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: fine labels must be integers, got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        index = int(bad[0])
        raise DataError(f"{where}: record {index} has fine label {int(labels[index])}, "
                        f"outside 0..{NUM_CLASSES - 1}")
    return labels.astype(np.int32)


def _channel_major_to_hwc(flat, where):
    """[N, 3072] uint8 channel-major rows -> [N, 32, 32, 3] uint8 (a contiguous copy)."""
    flat = np.asarray(flat)
    if flat.ndim != 2 or flat.shape[1] != IMAGE_BYTES:
        raise DataError(f"{where}: image data must have shape [N, {IMAGE_BYTES}], got {flat.shape}")
    if flat.dtype != np.uint8:
        raise DataError(f"{where}: image data must be uint8, got dtype {flat.dtype}")
    return np.ascontiguousarray(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def read_binary(path):
    """Read a CIFAR-100 binary file (``train.bin`` / ``test.bin``).

    Returns ``(images, fine_labels)``: uint8 [N, 32, 32, 3] (HWC) and int32 [N]. Any number of
    records, none included; the coarse label byte is ignored.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"CIFAR-100 binary file not found: {path}")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % RECORD_BYTES:
        raise DataError(f"{path}: size {raw.size} bytes is not a multiple of the record size "
                        f"{RECORD_BYTES} (2 label bytes + {IMAGE_BYTES} image bytes); "
                        f"not a CIFAR-100 binary file, or truncated")
    records = raw.reshape(-1, RECORD_BYTES)
    labels = _check_fine_labels(records[:, 1], path)
    images = _channel_major_to_hwc(records[:, LABEL_BYTES:], path)
    return images, labels


def _pickle_get(batch, key, path):
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise DataError(f"{path}: pickle has no {key!r} entry (keys: "
                    f"{sorted(repr(k) for k in batch)[:8]}); expected the CIFAR-100 python "
                    f"version with b'data' and b'fine_labels'")


def read_pickle_folder(folder, split):
    """Read ``<folder>/<split>`` of the CIFAR-100 python version (``split`` is train or test).

    The file is a pickled dict with ``b"data"`` (uint8 [N, 3072], channel-major) and
    ``b"fine_labels"`` (N ints). Returns ``(images, labels)`` like ``read_binary``.
    """
    if split not in _PICKLE_FILES:
        raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(f"CIFAR-100 data folder not found: {folder}")
    path = os.path.join(folder, _PICKLE_FILES[split])
    if not os.path.isfile(path):
        raise DataError(f"CIFAR-100 python-version file not found: {path}")
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as e:  # unpickling errors come in many types
        raise DataError(f"{path}: cannot unpickle ({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict):
        raise DataError(f"{path}: pickle holds a {type(batch).__name__}, expected a dict with "
                        f"b'data' and b'fine_labels'")
    images = _channel_major_to_hwc(_pickle_get(batch, "data", path), path)
    labels = _check_fine_labels(_pickle_get(batch, "fine_labels", path), path)
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{path}: {images.shape[0]} images but {labels.shape[0]} fine labels")
    return images, labels


# --------------------------------------------------------------------------- synthetic set


def _interpolation_matrix(size, points):
    """[size, points] matrix that linearly interpolates ``points`` values onto ``size`` pixels."""
    t = np.arange(size) * (points - 1) / (size - 1)
    low = np.minimum(np.floor(t).astype(int), points - 2)
    frac = t - low
    m = np.zeros((size, points))
    m[np.arange(size), low] = 1.0 - frac
    m[np.arange(size), low + 1] += frac
    return m


def _synthetic_split(templates, count, rng, chunk=2000):
    num_classes, field = templates.shape[0], templates.shape[1]
    max_shift = field - 32
    labels = rng.permutation(np.arange(count) % num_classes).astype(np.int32)
    images = np.empty((count,) + IMAGE_SHAPE, np.uint8)
    grid = np.arange(32)
    for start in range(0, count, chunk):
        lab = labels[start:start + chunk]
        n = lab.shape[0]
        dy = rng.integers(0, max_shift + 1, n)
        dx = rng.integers(0, max_shift + 1, n)
        rows = (dy[:, None] + grid)[:, :, None]
        cols = (dx[:, None] + grid)[:, None, :]
        x = templates[lab[:, None, None], rows, cols]  # [n, 32, 32, 3] float32
        x += rng.normal(0.0, 20.0, (n, 1, 1, 1)).astype(np.float32)  # brightness
        x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(40.0)  # pixel noise
        images[start:start + n] = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return images, labels


def synthetic_cifar100(num_train=5000, num_test=1000, num_classes=100, seed=0):
    """A small CIFAR-shaped data set whose classes a small conv net learns quickly.

    Each class is a fixed random smooth colour field (5x5x3 random control values, bilinearly
    interpolated over a 36x36 canvas); an image is a random 32x32 window of its class's field
    (shifts of 0..4 pixels), plus a random brightness offset (sd 20) and pixel noise (sd 40),
    rounded and clipped to uint8. Labels are balanced and shuffled. Deterministic given
    ``seed``; the test images do not depend on ``num_train`` and vice versa.

    Returns ``(train_images, train_labels, test_images, test_labels)``: uint8 [N, 32, 32, 3] and
    int32 [N] in 0..num_classes-1.
    """
    if not 1 <= num_classes <= 256:
        raise DataError(f"synthetic num_classes must be in 1..256, got {num_classes}")
    if num_train < 0 or num_test < 0:
        raise DataError(f"synthetic sizes must be >= 0, got {num_train} train / {num_test} test")
    points, field = 5, 36
    control = np.random.default_rng([seed, 0]).uniform(0.0, 1.0, (num_classes, points, points, 3))
    m = _interpolation_matrix(field, points)
    templates = 40.0 + 175.0 * np.einsum("yi,nijc,xj->nyxc", m, control, m)
    templates = templates.astype(np.float32)
    train = _synthetic_split(templates, num_train, np.random.default_rng([seed, 1]))
    test = _synthetic_split(templates, num_test, np.random.default_rng([seed, 2]))
    return train[0], train[1], test[0], test[1]


# --------------------------------------------------------------------------- loading


def _require_folder(folder, what):
    if folder is None:
        raise DataError(f"dataset {what!r} needs a data folder (--data_dir)")
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(f"CIFAR-100 data folder not found: {folder}")
    return folder


def _load_binary(folder):
    folder = _require_folder(folder, "binary")
    paths = {split: os.path.join(folder, name) for split, name in _BINARY_FILES.items()}
    for path in paths.values():  # say which file is missing before reading 150 MB
        if not os.path.isfile(path):
            raise DataError(f"CIFAR-100 binary file not found: {path}")
    train = read_binary(paths["train"])
    test = read_binary(paths["test"])
    return CifarData(*train, *test, source=f"CIFAR-100 binary files in {os.path.abspath(folder)}")


def _load_pickle(folder):
    folder = _require_folder(folder, "pickle")
    for name in _PICKLE_FILES.values():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise DataError(f"CIFAR-100 python-version file not found: {path}")
    train = read_pickle_folder(folder, "train")
    test = read_pickle_folder(folder, "test")
    return CifarData(*train, *test,
                     source=f"CIFAR-100 python-version files in {os.path.abspath(folder)}")


def _import_tfds():
    import tensorflow_datasets as tfds  # slow to import; only when asked for

    return tfds


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _load_tfds(data_dir):
    where = f"tfds 'cifar100' (data_dir={data_dir or 'default ~/tensorflow_datasets'})"
    try:
        tfds = _import_tfds()
        train, test = tfds.load("cifar100", split=["train", "test"], batch_size=-1,
                                as_supervised=False, data_dir=data_dir)
    except Exception as e:  # download, network, missing package, corrupt cache ...
        raise DataError(f"could not load {where}: {_first_line(e)}; without network access "
                        f"pass --data_dir with a CIFAR-100 binary (train.bin, test.bin) or "
                        f"python (train, test) folder, or use --dataset synthetic") from e
    arrays = []
    for split, batch in (("train", train), ("test", test)):
        try:
            images, labels = np.asarray(batch["image"]), np.asarray(batch["label"])
        except (KeyError, TypeError) as e:
            raise DataError(f"{where} {split}: no 'image'/'label' fields ({_first_line(e)})") from e
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
            raise DataError(f"{where} {split}: images have shape {images.shape} and dtype "
                            f"{images.dtype}, expected uint8 [N, 32, 32, 3]")
        labels = _check_fine_labels(labels, f"{where} {split}")
        if labels.shape[0] != images.shape[0]:
            raise DataError(f"{where} {split}: {images.shape[0]} images but "
                            f"{labels.shape[0]} labels")
        arrays += [images, labels]
    return CifarData(*arrays, source=f"tensorflow-datasets {where[5:]}")


def _detect(folder):
    """Which format ``folder`` holds: 'binary', 'pickle', ('sub', path) or 'tfds', else DataError."""
    folder = _require_folder(folder, "auto")

    def has(names):
        return all(os.path.isfile(os.path.join(folder, n)) for n in names)

    if has(_BINARY_FILES.values()):
        return "binary", folder
    if has(_PICKLE_FILES.values()):
        return "pickle", folder
    # the folder the archives unpack into, one level down
    for sub, kind in (("cifar-100-binary", "binary"), ("cifar-100-python", "pickle")):
        if os.path.isdir(os.path.join(folder, sub)):
            return kind, os.path.join(folder, sub)
    if os.path.isdir(os.path.join(folder, "cifar100")):  # a tensorflow-datasets data_dir
        return "tfds", folder
    raise DataError(f"{folder}: no CIFAR-100 data found; expected train.bin and test.bin "
                    f"(binary version), train and test (python version), a cifar-100-binary or "
                    f"cifar-100-python subfolder, or a tensorflow-datasets cifar100 subfolder")


def load_cifar100(dataset="auto", data_dir=None, default_binary_dir=None):
    """Load both splits; returns a ``CifarData``.

    dataset:
      - ``"auto"``: with ``data_dir``, whatever it holds (binary ``train.bin``/``test.bin``,
        python ``train``/``test``, those formats' unpacked subfolders, or a tfds data_dir);
        without it, the binary folder ``default_binary_dir`` if it exists (the original's
        ``<repo>/cifar-100-binary/``), else tensorflow-datasets (downloads on first use).
      - ``"binary"``: ``data_dir``, or ``default_binary_dir`` when ``data_dir`` is None.
      - ``"pickle"``: ``data_dir``.
      - ``"tfds"``: tensorflow-datasets ``cifar100`` with ``data_dir`` as its data_dir.
      - ``"synthetic"``: ``synthetic_cifar100()`` (``data_dir`` ignored).
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if dataset == "synthetic":
        data = synthetic_cifar100()
        return CifarData(*data, source="synthetic CIFAR-shaped data (seed 0, 5000 train / 1000 "
                                       "test images, 100 classes); NOT CIFAR-100")
    if dataset == "binary":
        return _load_binary(data_dir if data_dir is not None else default_binary_dir)
    if dataset == "pickle":
        return _load_pickle(data_dir)
    if dataset == "tfds":
        return _load_tfds(None if data_dir is None else os.fspath(data_dir))
    # auto
    if data_dir is None:
        if default_binary_dir is not None and os.path.isdir(default_binary_dir):
            return _load_binary(default_binary_dir)
        return _load_tfds(None)
    kind, folder = _detect(data_dir)
    return {"binary": _load_binary, "pickle": _load_pickle, "tfds": _load_tfds}[kind](folder)


# --------------------------------------------------------------------------- pipelines


def _check_arrays(images, labels):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise DataError(f"images must be uint8 [N, 32, 32, 3], got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DataError(f"labels must have shape [{images.shape[0]}], got {labels.shape}")
    if images.shape[0] == 0:
        raise DataError("no images")
    return images, labels.astype(np.int32)


def _augmenter(seed):
    base = tf.constant(seed, tf.int64)
    paddings = tf.constant([[PAD, PAD], [PAD, PAD], [0, 0]])

    def augment(index, element):
        image, label = element
        crop_seed, flip_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.stack([base, index]), num=2))
        # Padding, cropping and flipping only move pixels, so they run on uint8 (4x fewer bytes)
        # and the cast comes last: bit-identical to casting first.
        image = tf.pad(image, paddings, mode="SYMMETRIC")
        image = tf.image.stateless_random_crop(image, IMAGE_SHAPE, seed=crop_seed)
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
        return tf.cast(image, tf.float32), label

    return augment


def train_dataset(images, labels, batch_size, seed, shuffle_buffer=20000):
    """Endless, shuffled, augmented training batches: (float32 [B, 32, 32, 3] in 0..255, int32 [B]).

    The order is repeat -> shuffle(buffer) -> enumerate -> augment -> batch, like the original's
    queue (a file read over and over, through a 20000-example shuffling queue): the buffer mixes
    across epoch boundaries, so each image is seen once per epoch only on average. A buffer
    larger than the data set is cut to its size (it would only hold duplicates).

    Deterministic given ``seed`` (and TensorFlow's global seed, which ``shuffle`` also reads
    when one is set). The augmentation of the k-th image of the stream uses the stateless key
    (seed, k). ``tf.train.Checkpoint(iterator=iter(ds))`` saves the position, including the
    shuffle buffer (about 3 KiB per buffered image).
    """
    images, labels = _check_arrays(images, labels)
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    buffer = int(max(1, min(shuffle_buffer, images.shape[0])))
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.repeat().shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.enumerate()
    ds = ds.map(_augmenter(seed), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def test_dataset(images, labels, batch_size=100):
    """One ordered pass over all images, unchanged: (float32 [b, 32, 32, 3], int32 [b]).

    The last batch is partial when ``batch_size`` does not divide the number of images. Build it
    once and call ``iter()`` for each evaluation: every iterator is a fresh pass.
    """
    images, labels = _check_arrays(images, labels)
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def pipeline_throughput(dataset, batches, warmup=2):
    """Images per second delivered by ``dataset`` over ``batches`` batches.

    The first ``warmup`` batches are taken untimed (they include filling the shuffle buffer).
    Stops early, counting what it got, if the dataset ends.
    """
    iterator = iter(dataset)
    for _ in range(warmup):
        if next(iterator, None) is None:
            return 0.0
    count = 0
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator, None)
        if batch is None:
            break
        count += int(batch[0].shape[0])
    elapsed = time.perf_counter() - start
    return count / elapsed if elapsed > 0 else 0.0
