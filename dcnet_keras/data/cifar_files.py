"""Readers of the two CIFAR file formats (NumPy only), parameterised by the label layout.

Binary version (``read_binary``): a file of fixed-size records, each ``label_bytes`` label
bytes followed by 3072 image bytes, channel-major (1024 red, 1024 green, 1024 blue bytes, each
plane row by row, 32x32). CIFAR-10: 1 label byte (0..9), 3073-byte records; CIFAR-100: 2
label bytes (coarse 0..19, then fine 0..99), 3074-byte records. The label used is byte
``label_index`` of the record.

Python version (``read_pickle``): a pickled dict (written by Python 2, so read with
``encoding="bytes"``) with ``b"data"``, uint8 [N, 3072] rows in the same channel-major order,
and a list of N labels under ``label_key`` (``b"labels"`` for CIFAR-10, ``b"fine_labels"`` for
CIFAR-100).

Both return ``(images, labels)``: uint8 [N, 32, 32, 3] (HWC: ``images[n, y, x, c] =
row[c * 1024 + y * 32 + x]``) and int32 [N]. Every problem is one ``DataError`` line naming
the file (and the record and value where there is one).
"""

import os
import pickle

import numpy as np

from dcnet_keras.data.errors import DataError

IMAGE_SHAPE = (32, 32, 3)
IMAGE_BYTES = 32 * 32 * 3


def check_labels(labels, num_classes, where, what="label"):
    """int32 copy of ``labels`` after checking it is 1-D, integer and each in 0..num_classes-1.

    ``where`` (the file) and ``what`` (e.g. "fine label") name the problem in the message.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"{where}: {what}s must be one-dimensional, got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: {what}s must be integers, got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        index = int(bad[0])
        raise DataError(f"{where}: record {index} has {what} {int(labels[index])}, "
                        f"outside 0..{num_classes - 1}")
    return labels.astype(np.int32)


def channel_major_to_hwc(flat, where):
    """[N, 3072] uint8 channel-major rows -> [N, 32, 32, 3] uint8 (a contiguous copy)."""
    flat = np.asarray(flat)
    if flat.ndim != 2 or flat.shape[1] != IMAGE_BYTES:
        raise DataError(f"{where}: image data must have shape [N, {IMAGE_BYTES}], got {flat.shape}")
    if flat.dtype != np.uint8:
        raise DataError(f"{where}: image data must be uint8, got dtype {flat.dtype}")
    return np.ascontiguousarray(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def read_binary(path, label_bytes, label_index, num_classes, title="CIFAR", what="label"):
    """Read one binary-version file: ``(images, labels)`` as described in the module docstring.

    Record size ``label_bytes + 3072``; the label is byte ``label_index``; any number of
    records, none included (an empty file gives empty arrays). ``title`` (e.g. "CIFAR-10")
    and ``what`` (e.g. "fine label") are only used in messages.
    """
    if not 0 <= label_index < label_bytes:
        raise ValueError(f"label_index must be in 0..{label_bytes - 1}, got {label_index}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{title} binary file not found: {path}")
    record_bytes = label_bytes + IMAGE_BYTES
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % record_bytes:
        raise DataError(f"{path}: size {raw.size} bytes is not a multiple of the record size "
                        f"{record_bytes} ({label_bytes} label byte{'s' * (label_bytes > 1)} + "
                        f"{IMAGE_BYTES} image bytes); not a {title} binary file, or truncated")
    records = raw.reshape(-1, record_bytes)
    labels = check_labels(records[:, label_index], num_classes, path, what)
    images = channel_major_to_hwc(records[:, label_bytes:], path)
    return images, labels


def _pickle_entry(batch, key, path, expected):
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise DataError(f"{path}: pickle has no {key!r} entry (keys: "
                    f"{sorted(repr(k) for k in batch)[:8]}); expected {expected}")


def read_pickle(path, label_key, num_classes, title="CIFAR", what="label"):
    """Read one python-version file: ``(images, labels)`` as described in the module docstring.

    ``label_key``: ``"labels"`` (CIFAR-10) or ``"fine_labels"`` (CIFAR-100), looked up as bytes
    first, then as str.
    """
    path = os.fspath(path)
    expected = f"the {title} python version with b'data' and b'{label_key}'"
    if not os.path.isfile(path):
        raise DataError(f"{title} python-version file not found: {path}")
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as e:  # unpickling errors come in many types
        raise DataError(f"{path}: cannot unpickle ({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict):
        raise DataError(f"{path}: pickle holds a {type(batch).__name__}, expected a dict: "
                        f"{expected}")
    images = channel_major_to_hwc(_pickle_entry(batch, "data", path, expected), path)
    labels = check_labels(_pickle_entry(batch, label_key, path, expected), num_classes, path,
                          what)
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{path}: {images.shape[0]} images but {labels.shape[0]} {what}s")
    return images, labels


def read_files(paths, reader, what="file"):
    """``reader(path)`` for each of ``paths``, images and labels concatenated in that order.

    Every path is checked to exist first, so a missing file is named (``"<what> not found:
    <path>"``) before any is read; a file without records is an error (``"<path>: no images"``):
    each CIFAR file of a split holds 10000 or more.
    """
    paths = [os.fspath(path) for path in paths]
    for path in paths:
        if not os.path.isfile(path):
            raise DataError(f"{what} not found: {path}")
    parts = []
    for path in paths:
        images, labels = reader(path)
        if images.shape[0] == 0:
            raise DataError(f"{path}: no images")
        parts.append((images, labels))
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([images for images, _ in parts]),
            np.concatenate([labels for _, labels in parts]))
