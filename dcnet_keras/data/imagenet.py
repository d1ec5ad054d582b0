"""ImageNet for the ImageNet DCNet: shard files, record parsing and checks, train / eval pipelines.

Sources (``source=``):

- ``tfrecord``: slim-style TFRecord shards (``build_imagenet_data.py``), ``train-*`` and
  ``validation-*`` in ``data_dir``; each record a ``tf.train.Example`` with ``image/encoded``
  (JPEG bytes) and ``image/class/label`` (int64, 1..1000; we subtract 1).
- ``tfds``: ``tensorflow_datasets`` ``imagenet2012``; ``data_dir`` is both the manual download
  folder (``ILSVRC2012_img_train.tar``, ``ILSVRC2012_img_val.tar``) and the tfds data_dir the
  prepared copy goes to (``data_dir/imagenet2012/...``); a folder already prepared is read as
  it is. Labels are already 0-based.

Preprocessing (SPEC section 5, as the original ``alex2012_image_processing.py``): decode with
``channels=3``, cast to float32, subtract the RGB mean ``IMAGENET_MEAN`` (no scaling), THEN
resize to 256x256 with TF1's bilinear resize (``align_corners=False``, no half-pixel centres;
the aspect ratio is not kept). Train: a random 224x224 crop and a random horizontal flip,
stateless and keyed by the element's position in the stream, so the result does not depend on
the number of parallel calls. Eval: ``imagenet_preprocessing.eval_preprocess`` (the same
resize, then the central 224x224 window at offset 16).

Bad data never trains silently: a label outside 1..1000 fails an in-graph
``tf.debugging.Assert`` whose message has the label value, the shard file and the record index;
an undecodable image fails ``decode_jpeg``. Both raise ``tf.errors.InvalidArgumentError`` from
the iterator; ``find_bad_record(files)`` then scans the shards and returns one line naming the
file, the record index and the problem. Problems found before reading (missing folder, no
shards, bad arguments) raise ``DataError`` (the CIFAR module's type, so one ``except`` catches
both) with a one-line message naming the path or the value.

``write_shards`` writes small slim-format shards with real JPEG images, for tests and
benchmarks.
"""

import glob
import os

import numpy as np
import tensorflow as tf

from dcnet_keras.data import cifar100 as _cifar
from dcnet_keras.data.cifar100 import pipeline_throughput  # noqa: F401  (same semantics)
from dcnet_keras.data.imagenet_preprocessing import eval_preprocess

IMAGENET_MEAN = (121.6, 116.6, 102.7)
NUM_CLASSES = 1000
RESIZE_SIZE = 256
CROP_SIZE = 224
SPLITS = ("train", "validation")
SOURCES = ("tfrecord", "tfds")
_TFDS_SPLITS = {"train": "train", "validation": "validation"}
_INTERLEAVE_FILES = 16  # shards read at once by the training pipeline (records interleaved 1:1)

_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


class DataError(_cifar.DataError):
    """A problem with the ImageNet input; one line naming the file or the value.

    A subclass of ``dcnet_keras.data.cifar100.DataError`` (itself a ``ValueError``).
    """


# --------------------------------------------------------------------------- files and records


def shard_files(data_dir, split):
    """Sorted paths of the ``<split>-*`` files in ``data_dir`` (split: train or validation)."""
    if split not in SPLITS:
        raise DataError(f"unknown ImageNet split {split!r}; expected 'train' or 'validation'")
    if data_dir is None:
        raise DataError("ImageNet needs a data folder (--data_dir) with train-* and "
                        "validation-* TFRecord shards")
    folder = os.fspath(data_dir)
    if not os.path.isdir(folder):
        raise DataError(f"ImageNet data folder not found: {folder}")
    pattern = os.path.join(folder, f"{split}-*")
    files = sorted(p for p in glob.glob(os.path.join(glob.escape(folder), f"{split}-*"))
                   if os.path.isfile(p))
    if not files:
        raise DataError(f"no files match {pattern}")
    return files


def _checked_label(label, low, context):
    """``label - low`` as int32 after an in-graph check that it lies in low..low+999."""
    ok = tf.logical_and(label >= low, label <= low + NUM_CLASSES - 1)
    message = [f"ImageNet label outside {low}..{low + NUM_CLASSES - 1}: label", label] + context
    check = tf.debugging.Assert(ok, message, summarize=1)
    with tf.control_dependencies([check]):
        return tf.cast(label - low, tf.int32)


def _decode(encoded):
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
    features = tf.io.parse_single_example(serialized, _FEATURES)
    context = []
    if file is not None:
        context += ["file", file]
    if index is not None:
        context += ["record", index]
    label = _checked_label(features["image/class/label"], 1, context)
    return _decode(features["image/encoded"]), label


def _record_problem(raw):
    """What is wrong with one serialized record (a string), or None."""
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
        _decode(tf.constant(encoded[0]))
    except tf.errors.InvalidArgumentError as e:
        return (f"image/encoded ({len(encoded[0])} bytes) is not a decodable JPEG: "
                f"{_op_message(e)}")[:300]
    return None


def _op_message(exc):
    """The message of an exception on one line, without TensorFlow's op decorations."""
    text = " ".join(str(getattr(exc, "message", exc)).split())
    if text.startswith("{{function_node"):
        text = text.split("}}", 1)[-1]
    return text.split(" [Op:", 1)[0].strip()


def _first_line(exc):
    return f"{type(exc).__name__}: {_op_message(exc)}"[:300]


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
        features = tf.io.parse_single_example(serialized, _FEATURES)
        label = _checked_label(features["image/class/label"], 1, [])
        height = tf.shape(_decode(features["image/encoded"]))[0] if check_images else 0
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
            return count, f"cannot read the record ({_first_line(read_error)})"
    raw = next(iter(tf.data.TFRecordDataset(path).skip(first_bad).take(1))).numpy()
    problem = _record_problem(raw)
    return first_bad, problem or "fails to parse in the pipeline (parse_single_example)"


def find_bad_record(files, check_images=True):
    """One line ``"<file>: record <i>: <problem>"`` for the first bad record, or None.

    Scans the shards in order (a parallel in-graph pass per file, then a Python look at the
    record that failed): labels outside 1..1000, missing features, images that do not decode
    (``check_images=False`` skips decoding, much faster), unreadable (truncated) TFRecords.
    Decoding everything costs about as much as one pass of the pipeline over the files.
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


# --------------------------------------------------------------------------- preprocessing


def _mean_subtract_resize(image):
    """float32(image) - mean, then TF1 bilinear resize to 256x256 (no half-pixel centres)."""
    image = tf.cast(image, tf.float32) - tf.constant(IMAGENET_MEAN, tf.float32)
    resized = tf.raw_ops.ResizeBilinear(images=image[tf.newaxis],
                                        size=[RESIZE_SIZE, RESIZE_SIZE],
                                        align_corners=False, half_pixel_centers=False)
    return resized[0]


def train_preprocess(image_uint8, seed_pair):
    """The original's training preprocessing, with stateless randomness keyed by ``seed_pair``.

    ``image_uint8``: [H, W, 3] RGB of any size; ``seed_pair``: int [2]. Subtract the mean, TF1
    bilinear resize to 256x256 (aspect not kept), random 224x224 crop, random horizontal flip.
    Returns float32 [224, 224, 3].
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed_pair, tf.int64), num=2)
    image = _mean_subtract_resize(image_uint8)
    image = tf.image.stateless_random_crop(image, [CROP_SIZE, CROP_SIZE, 3], seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1])


# --------------------------------------------------------------------------- tfds


def _import_tfds():
    import tensorflow_datasets as tfds  # slow to import; only when asked for

    return tfds


def _tfds_split(data_dir, split, shuffle_seed=None):
    """tfds imagenet2012 ``split``: a dataset of (encoded JPEG, 0-based int64 label, file name)."""
    if data_dir is None:
        raise DataError("source 'tfds' needs --data_dir: the imagenet2012 manual download folder")
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise DataError(f"ImageNet data folder not found: {data_dir}")
    where = f"tfds 'imagenet2012' (data_dir and manual_dir {data_dir})"
    try:
        tfds = _import_tfds()
        builder = tfds.builder("imagenet2012", data_dir=data_dir)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=data_dir))
        read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed)
        ds = builder.as_dataset(split=_TFDS_SPLITS[split], shuffle_files=shuffle_seed is not None,
                                read_config=read_config,
                                decoders={"image": tfds.decode.SkipDecoding()})
    except Exception as e:  # missing tars, missing package, corrupt preparation ...
        raise DataError(f"could not load {where}: {_first_line(e)}; the folder needs "
                        f"ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (or a prepared "
                        f"imagenet2012 copy), or use --source tfrecord with slim shards") from e

    def fields(example):
        name = example.get("file_name", tf.constant("?"))
        return example["image"], tf.cast(example["label"], tf.int64), name

    return ds.map(fields)


# --------------------------------------------------------------------------- pipelines


def _check_args(batch_size, source):
    if source not in SOURCES:
        raise DataError(f"unknown ImageNet source {source!r}; expected 'tfrecord' or 'tfds'")
    if int(batch_size) != batch_size or batch_size < 1:
        raise DataError(f"batch_size must be an integer >= 1, got {batch_size}")


def _file_records(path):
    """(file, record index, serialized) for each record of one shard."""
    return tf.data.TFRecordDataset(path).enumerate().map(lambda i, s: (path, i, s))


def train_dataset(data_dir, batch_size, seed, shuffle_buffer=10000, source="tfrecord"):
    """Endless shuffled, augmented batches: (float32 [B, 224, 224, 3], int32 [B] in 0..999).

    tfrecord: the shard order is reshuffled every epoch (seeded), up to 16 shards are read at
    once with their records interleaved, then the serialized records go through a
    ``shuffle_buffer`` shuffle (the original's shuffling queue; the buffer holds encoded JPEGs,
    about 110 KB each on ImageNet, so 10000 is about 1.1 GB of memory). tfds: its shuffled
    file order, then the same buffer. Then ``enumerate`` and, in parallel but in order,
    ``parse_record`` + ``train_preprocess`` with the seed pair derived from (seed, position);
    full batches only; prefetched.

    Deterministic given ``seed`` (and TensorFlow's global seed, which ``shuffle`` also reads
    when one is set). Bad records raise ``tf.errors.InvalidArgumentError`` from the iterator;
    see ``find_bad_record``.
    """
    _check_args(batch_size, source)
    if seed is None or int(seed) != seed:
        raise DataError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    buffer = int(max(1, shuffle_buffer))
    if source == "tfrecord":
        files = shard_files(data_dir, "train")
        ds = tf.data.Dataset.from_tensor_slices(files)
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.interleave(_file_records, cycle_length=min(len(files), _INTERLEAVE_FILES),
                           block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=True)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

        def decode(file, index, serialized):
            return parse_record(serialized, file, index)
    else:
        ds = _tfds_split(data_dir, "train", shuffle_seed=seed).repeat()
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

        def decode(encoded, label, name):
            return _decode(encoded), _checked_label(label, 0, ["file", name])

    base = tf.constant(seed, tf.int64)

    def preprocess(position, element):
        image, label = decode(*element)
        return train_preprocess(image, tf.stack([base, position])), label

    ds = ds.enumerate()
    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(data_dir, batch_size, source="tfrecord"):
    """One ordered pass over every validation image: (float32 [b, 224, 224, 3], int32 [b]).

    tfrecord: the ``validation-*`` shards in sorted order, each record in file order; tfds:
    the ``validation`` split unshuffled. Each image: ``eval_preprocess`` (mean, TF1 resize to
    256x256, central 224x224 crop). The last batch is partial when ``batch_size`` does not
    divide the number of images. Build it once and call ``iter()`` for each evaluation.
    """
    _check_args(batch_size, source)
    if source == "tfrecord":
        files = shard_files(data_dir, "validation")
        ds = tf.data.Dataset.from_tensor_slices(files).flat_map(_file_records)

        def decode(file, index, serialized):
            return parse_record(serialized, file, index)
    else:
        ds = _tfds_split(data_dir, "validation")

        def decode(encoded, label, name):
            return _decode(encoded), _checked_label(label, 0, ["file", name])

    def preprocess(*element):
        image, label = decode(*element)
        return eval_preprocess(image), label

    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- test data


def _bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def write_shards(folder, split, images, labels, num_shards, quality=95):
    """Write slim-format TFRecord shards ``<split>-NNNNN-of-MMMMM``; returns their paths.

    ``images``: uint8 [H, W, 3] arrays of any sizes (JPEG-encoded with ``tf.io.encode_jpeg``
    at ``quality``) or ``bytes`` (written as they are, e.g. a corrupt JPEG); ``labels``: ints
    written unchanged as ``image/class/label`` (slim's 1..1000; any value, to test checks).
    Records go to the shards in order, in contiguous runs as even as possible (a shard may be
    empty when there are more shards than images).
    """
    if len(images) != len(labels):
        raise DataError(f"write_shards: {len(images)} images but {len(labels)} labels")
    if num_shards < 1:
        raise DataError(f"write_shards: num_shards must be >= 1, got {num_shards}")
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    bounds = np.linspace(0, len(images), num_shards + 1).round().astype(int)
    paths = []
    for shard in range(num_shards):
        path = os.path.join(folder, f"{split}-{shard:05d}-of-{num_shards:05d}")
        with tf.io.TFRecordWriter(path) as writer:
            for k in range(bounds[shard], bounds[shard + 1]):
                image = images[k]
                if isinstance(image, bytes):
                    encoded, height, width = image, 0, 0
                else:
                    image = np.asarray(image)
                    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                        raise DataError(f"write_shards: image {k} must be uint8 [H, W, 3], got "
                                        f"{image.dtype} {image.shape}")
                    encoded = tf.io.encode_jpeg(image, quality=quality).numpy()
                    height, width = image.shape[:2]
                feature = {
                    "image/encoded": _bytes_feature(encoded),
                    "image/format": _bytes_feature(b"JPEG"),
                    "image/colorspace": _bytes_feature(b"RGB"),
                    "image/channels": _int64_feature(3),
                    "image/height": _int64_feature(height),
                    "image/width": _int64_feature(width),
                    "image/class/label": _int64_feature(labels[k]),
                    "image/filename": _bytes_feature(f"image_{k:06d}.JPEG".encode()),
                }
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
        paths.append(path)
    return paths
