"""ImageNet shard files and records: finding the shards, parsing a record, checking its label.

Format (slim's ``build_imagenet_data.py``): files ``<split>-NNNNN-of-MMMMM`` (``split``:
``train`` or ``validation``) in one folder; each a TFRecord file of serialized
``tf.train.Example`` records with ``image/encoded`` (JPEG bytes) and ``image/class/label``
(int64, 1..1000). Other features (``image/height``, ``image/filename``, ...) are ignored.

Parsing: ``image = decode_jpeg(image/encoded, channels=3)`` (uint8 ``[H, W, 3]``) and
``label = image/class/label - 1`` (int32 0..999), after an in-graph ``tf.debugging.Assert``
that the label lies in 1..1000; its message holds the label value and, when given, the shard
file and the record index. An image that does not decode fails ``decode_jpeg``. Both raise
``tf.errors.InvalidArgumentError`` when the value is computed (from the iterator of a
pipeline); ``dcnet_keras.data.imagenet_forensics.find_bad_record`` then names the record.
"""

import glob
import os

import tensorflow as tf

from dcnet_keras.data.errors import DataError

NUM_CLASSES = 1000
SPLITS = ("train", "validation")

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


def shard_pattern(data_dir, split):
    """``<data_dir>/<split>-*``, the glob the shards of ``split`` match."""
    return os.path.join(os.fspath(data_dir), f"{split}-*")


def shard_files(data_dir, split):
    """Sorted paths of the ``<split>-*`` files in ``data_dir`` (split: train or validation).

    Raises ``DataError`` (one line naming the folder or the pattern) when ``data_dir`` is
    None, is not a folder, or holds no such file.
    """
    if split not in SPLITS:
        raise DataError(f"unknown ImageNet split {split!r}; expected 'train' or 'validation'")
    if data_dir is None:
        raise DataError("ImageNet needs a data folder (--data_dir) with train-* and "
                        "validation-* TFRecord shards")
    folder = os.fspath(data_dir)
    if not os.path.isdir(folder):
        raise DataError(f"ImageNet data folder not found: {folder}")
    files = sorted(p for p in glob.glob(os.path.join(glob.escape(folder), f"{split}-*"))
                   if os.path.isfile(p))
    if not files:
        raise DataError(f"no files match {shard_pattern(folder, split)}")
    return files


def checked_label(label, low, context=()):
    """``label - low`` as int32, after an in-graph check that ``low <= label <= low + 999``.

    ``context``: extra items for the assertion's message (e.g. ``["file", name]``). A label
    outside the range raises ``tf.errors.InvalidArgumentError`` with its value in the message.
    """
    ok = tf.logical_and(label >= low, label <= low + NUM_CLASSES - 1)
    message = [f"ImageNet label outside {low}..{low + NUM_CLASSES - 1}: label", label]
    check = tf.debugging.Assert(ok, message + list(context), summarize=1)
    with tf.control_dependencies([check]):
        return tf.cast(label - low, tf.int32)


def decode_jpeg(encoded):
    """JPEG bytes -> uint8 ``[H, W, 3]``, as the original's ``decode_jpeg(channels=3)``."""
    image = tf.io.decode_jpeg(encoded, channels=3)
    image.set_shape([None, None, 3])
    return image


def parse_record(serialized, file=None, index=None):
    """A slim-style serialized Example -> (uint8 image [H, W, 3], int32 label - 1).

    The label must lie in 1..1000, else the (in-graph) assertion fails with the label value in
    its message, and ``file`` / ``index`` (scalar tensors or values) when given. An image that
    is not a decodable JPEG makes ``decode_jpeg`` fail. Both raise
    ``tf.errors.InvalidArgumentError`` when the value is computed.
    """
    features = tf.io.parse_single_example(serialized, FEATURES)
    context = []
    if file is not None:
        context += ["file", file]
    if index is not None:
        context += ["record", index]
    label = checked_label(features["image/class/label"], 1, context)
    return decode_jpeg(features["image/encoded"]), label


def file_records(path):
    """A dataset of ``(file, record index, serialized record)`` over one shard, in order."""
    return tf.data.TFRecordDataset(path).enumerate().map(lambda i, s: (path, i, s))


def op_message(exc):
    """The message of an exception on one line, without TensorFlow's op decorations."""
    text = " ".join(str(getattr(exc, "message", exc)).split())
    if text.startswith("{{function_node"):
        text = text.split("}}", 1)[-1]
    return text.split(" [Op:", 1)[0].strip()


def error_line(exc):
    """``"<ExceptionType>: <op_message>"``, at most 300 characters."""
    return f"{type(exc).__name__}: {op_message(exc)}"[:300]
