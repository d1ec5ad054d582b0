"""Finding the record that stopped an ImageNet pipeline: ``find_bad_record(files)``.

A pipeline over slim shards (``dcnet_keras.data.imagenet_records``) fails with one
``tf.errors.OpError`` that does not always say which record; this module scans the shards
afterwards and returns one line ``"<file>: record <i>: <problem>"``.

Per shard: one parallel in-graph pass runs the pipeline's own checks on every record
(``parse_single_example``, the 1..1000 label assertion and, unless ``check_images=False``,
``decode_jpeg``) with ``ignore_errors``, so the indices that come out are the good records;
the first missing index is the first bad one. When none is missing, the file is counted to
the end to catch a truncated (unreadable) last record. The bad record is then read once more
and examined in Python (``record_problem``) to say what is wrong.
"""

import os

import numpy as np
import tensorflow as tf

from dcnet_keras.data.imagenet_records import (FEATURES, NUM_CLASSES, checked_label,
                                               decode_jpeg, error_line, op_message)


def record_problem(raw):
    """What is wrong with one serialized record (``bytes``), in a few words, or None.

    In order: not a ``tf.train.Example``; no ``image/class/label`` or not exactly one int64;
    a label outside 1..1000; no ``image/encoded`` or not exactly one bytes value; an image that
    ``decode_jpeg`` rejects (with its size in bytes and the decoder's message).
    """
    try:
        example = tf.train.Example.FromString(raw)
    except Exception as e:  # google.protobuf.message.DecodeError and friends
        return f"not a tf.train.Example ({type(e).__name__})"
    feature = example.features.feature
    if "image/class/label" not in feature:
        return "no image/class/label feature"
    values = list(feature["image/class/label"].int64_list.value)
    if len(values) != 1:
        return f"image/class/label has {len(values)} int64 values, expected 1"
    if not 1 <= values[0] <= NUM_CLASSES:
        return f"label {values[0]} outside 1..{NUM_CLASSES}"
    if "image/encoded" not in feature:
        return "no image/encoded feature"
    encoded = list(feature["image/encoded"].bytes_list.value)
    if len(encoded) != 1:
        return f"image/encoded has {len(encoded)} bytes values, expected 1"
    try:
        decode_jpeg(tf.constant(encoded[0]))
    except tf.errors.InvalidArgumentError as e:
        return (f"image/encoded ({len(encoded[0])} bytes) is not a decodable JPEG: "
                f"{op_message(e)}")[:300]
    return None


def _readable_count(path):
    """(number of records read, error or None): reads the whole file in-graph."""
    try:
        count = tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda c, _: c + 1)
        return int(count), None
    except tf.errors.OpError as e:  # truncated or corrupt file: find how far it reads
        count = 0
        try:
            for _ in tf.data.TFRecordDataset(path):
                count += 1
        except tf.errors.OpError as e2:
            return count, e2
        return count, e


def _first_bad_in_file(path, check_images):
    """(record index, problem) of the first bad record of one shard, or (None, None)."""
    def check(index, serialized):
        features = tf.io.parse_single_example(serialized, FEATURES)
        label = checked_label(features["image/class/label"], 1)
        height = tf.shape(decode_jpeg(features["image/encoded"]))[0] if check_images else 0
        return index, label, height  # outputs depend on the checks, so they run

    good = (tf.data.TFRecordDataset(path).enumerate()
            .map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .ignore_errors().map(lambda i, *_: i).batch(4096))
    first_bad, gap = 0, False  # records 0 .. first_bad-1 passed
    try:
        for indices in good.as_numpy_iterator():
            gaps = np.flatnonzero(indices != np.arange(first_bad, first_bad + indices.size))
            if gaps.size:
                first_bad, gap = first_bad + int(gaps[0]), True
                break
            first_bad += indices.size
    except tf.errors.OpError:
        pass  # a read error; located below
    if not gap:
        count, read_error = _readable_count(path)
        if first_bad >= count:
            if read_error is None:
                return None, None
            return count, f"cannot read the record ({error_line(read_error)})"
    raw = next(iter(tf.data.TFRecordDataset(path).skip(first_bad).take(1))).numpy()
    problem = record_problem(raw)
    return first_bad, problem or "fails to parse in the pipeline (parse_single_example)"


def find_bad_record(files, check_images=True):
    """One line ``"<file>: record <i>: <problem>"`` for the first bad record, or None.

    ``files``: one path or a list, scanned in order; a missing file gives
    ``"<file>: file not found"``. Problems: labels outside 1..1000, missing features, images
    that do not decode (``check_images=False`` skips decoding, much faster), unreadable
    (truncated) TFRecords. Decoding everything costs about as much as one pass of the
    pipeline over the files.
    """
    if isinstance(files, (str, bytes, os.PathLike)):
        files = [files]
    for path in files:
        path = os.fspath(path)
        if not os.path.isfile(path):
            return f"{path}: file not found"
        index, problem = _first_bad_in_file(path, check_images)
        if problem is not None:
            return f"{path}: record {index}: {problem}"
    return None
