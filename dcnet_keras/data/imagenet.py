"""The ImageNet input: the ``DataSource`` of the dataset registry and the train / eval pipelines.

Sources (``source=``):

- ``tfrecord``: slim-style TFRecord shards ``train-*`` and ``validation-*`` in ``data_dir``
  (format and checks: ``dcnet_keras.data.imagenet_records``; labels 1..1000, we subtract 1).
- ``tfds``: ``tensorflow_datasets`` ``imagenet2012``; ``data_dir`` is both the manual download
  folder (``ILSVRC2012_img_train.tar``, ``ILSVRC2012_img_val.tar``) and the tfds data_dir the
  prepared copy goes to (``data_dir/imagenet2012/...``); a folder already prepared is read as
  it is. Labels are already 0-based (checked to lie in 0..999).

Preprocessing (SPEC section 5): ``dcnet_keras.data.imagenet_preprocessing``: train
``train_preprocess`` (mean, TF1 resize to 256x256, random 224x224 crop, random flip, keyed by
``(seed, position in the stream)``), eval ``eval_preprocess`` (the central 224x224 window).

Bad data never trains silently: a label out of range or an undecodable image raises
``tf.errors.InvalidArgumentError`` from the iterator, and ``ImageNetSource.explain`` turns it
into one line naming the shard and the record (``imagenet_forensics.find_bad_record``).
Problems found before reading (missing folder, no shards, bad arguments) raise
``dcnet_keras.data.errors.DataError`` with a one-line message naming the path or the value.
"""

import os
import sys

import tensorflow as tf

from dcnet_keras.data.errors import DataError, first_line
from dcnet_keras.data.imagenet_preprocessing import eval_preprocess, train_preprocess
from dcnet_keras.data.imagenet_records import (checked_label, decode_jpeg, error_line,
                                               file_records, parse_record, shard_files)

SOURCES = ("tfrecord", "tfds")
AUGMENTATIONS = ("imagenet",)
_TFDS_SPLITS = {"train": "train", "validation": "validation"}
_INTERLEAVE_FILES = 16  # shards read at once by the training pipeline (records interleaved 1:1)


# --------------------------------------------------------------------------- tfds


def _import_tfds():
    import tensorflow_datasets as tfds  # slow to import; only when asked for

    return tfds


def _check_tfds_folder(data_dir):
    if data_dir is None:
        raise DataError("source 'tfds' needs --data_dir: the imagenet2012 manual download folder")
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise DataError(f"ImageNet data folder not found: {data_dir}")
    return data_dir


def tfds_split(data_dir, split, shuffle_seed=None):
    """tfds imagenet2012 ``split``: a dataset of (encoded JPEG, 0-based int64 label, file name).

    ``shuffle_seed``: None reads the files in order; an int shuffles the file order with it.
    Any failure to load (missing tars, missing package, corrupt preparation) is one
    ``DataError`` line naming the folder and the cause.
    """
    data_dir = _check_tfds_folder(data_dir)
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
        raise DataError(f"could not load {where}: {error_line(e)}; the folder needs "
                        f"ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (or a prepared "
                        f"imagenet2012 copy), or use --source tfrecord with slim shards") from e

    def fields(example):
        name = example.get("file_name", tf.constant("?"))
        return example["image"], tf.cast(example["label"], tf.int64), name

    return ds.map(fields)


def _decode_tfds(encoded, label, name):
    return decode_jpeg(encoded), checked_label(label, 0, ["file", name])


def _decode_tfrecord(file, index, serialized):
    return parse_record(serialized, file, index)


# --------------------------------------------------------------------------- pipelines


def _check_args(batch_size, source):
    if source not in SOURCES:
        raise DataError(f"unknown ImageNet source {source!r}; expected 'tfrecord' or 'tfds'")
    if int(batch_size) != batch_size or batch_size < 1:
        raise DataError(f"batch_size must be an integer >= 1, got {batch_size}")


def train_dataset(data_dir, batch_size, seed, shuffle_buffer=10000, source="tfrecord"):
    """Endless shuffled, augmented batches: (float32 [B, 224, 224, 3], int32 [B] in 0..999).

    tfrecord: the shard order is reshuffled every epoch (seeded), up to 16 shards are read at
    once with their records interleaved, then the serialized records go through a
    ``shuffle_buffer`` shuffle (the original's shuffling queue; the buffer holds encoded JPEGs,
    about 110 KB each on ImageNet, so 10000 is about 1.1 GB of memory). tfds: its shuffled
    file order, then the same buffer. Then ``enumerate`` and, in parallel but in order,
    ``parse_record`` + ``train_preprocess`` with the seed pair ``(seed, position)``;
    full batches only; prefetched.

    Deterministic given ``seed`` (and TensorFlow's global seed, which ``shuffle`` also reads
    when one is set). Bad records raise ``tf.errors.InvalidArgumentError`` from the iterator.
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
        ds = ds.interleave(file_records, cycle_length=min(len(files), _INTERLEAVE_FILES),
                           block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=True)
        decode = _decode_tfrecord
    else:
        ds = tfds_split(data_dir, "train", shuffle_seed=seed).repeat()
        decode = _decode_tfds
    ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
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
        ds = tf.data.Dataset.from_tensor_slices(files).flat_map(file_records)
        decode = _decode_tfrecord
    else:
        ds = tfds_split(data_dir, "validation")
        decode = _decode_tfds

    def preprocess(*element):
        image, label = decode(*element)
        return eval_preprocess(image), label

    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- the DataSource



class ImageNetSource:
    """ImageNet as a ``DataSource`` (protocol: ``dcnet_keras.data.registry``).

    ``source``: ``tfrecord`` or ``tfds``; ``data_dir``: the folder of shards (tfrecord) or
    the tfds manual/data folder. Built by :func:`open_source`, which checks the folder first.
    """

    checkpoint_input = False  # the shuffle buffer holds ~1 GB of JPEGs; resume reseeds instead

    def __init__(self, source, data_dir, name="imagenet"):
        self.source = source
        self.data_dir = data_dir
        if source == "tfrecord":
            train = shard_files(data_dir, "train")
            validation = shard_files(data_dir, "validation")
            self.description = (f"{name}: {len(train)} train-* and {len(validation)} "
                                f"validation-* TFRecord shards in {data_dir}")
        else:
            self.description = f"{name}: tfds imagenet2012 in {data_dir}"

    def train_dataset(self, batch_size, seed, start=0, augmentation="imagenet",
                      shuffle_buffer=10000):
        """Endless augmented batches (:func:`train_dataset`) seeded with ``seed + start``.

        The checkpoint does not hold the input position (``checkpoint_input`` is False), so a
        run resumed at iteration ``start`` draws a fresh stream, seeded differently from the
        first run's.
        """
        if augmentation not in AUGMENTATIONS:
            raise DataError(f"augmentation: ImageNet has only 'imagenet' (random 224 crop of "
                            f"the 256x256 resize + flip), got {augmentation!r}")
        if start is None or int(start) != start or start < 0:
            raise DataError(f"start must be an integer >= 0, got {start!r}")
        if seed is None or int(seed) != seed:
            raise DataError(f"seed must be an integer, got {seed!r}")
        return train_dataset(self.data_dir, batch_size, int(seed) + int(start),
                             shuffle_buffer=shuffle_buffer, source=self.source)

    def test_dataset(self, batch_size):
        """One ordered pass over the validation images (:func:`eval_dataset`)."""
        return eval_dataset(self.data_dir, batch_size, source=self.source)

    def explain(self, error):
        """One line naming the record behind ``error`` (a ``tf.errors.OpError``).

        tfrecord: prints a note to stderr, then scans the train and validation shards with
        ``find_bad_record`` (decoding every image: about one pass over the data) and returns
        its line, or the error's first line when every record is fine. tfds: the error's
        first line.
        """
        line = first_line(error)
        if self.source != "tfrecord":
            return line
        from dcnet_keras.data.imagenet_forensics import find_bad_record

        print("==== the input pipeline failed; scanning the shards for the bad record ...",
              file=sys.stderr, flush=True)
        files = shard_files(self.data_dir, "train") + shard_files(self.data_dir, "validation")
        return find_bad_record(files) or line


def open_source(spec, source, data_dir, default_dir):
    """The :class:`ImageNetSource` of ``source`` over ``data_dir`` (else ``default_dir``).

    Checks before any long work: tfrecord needs ``train-*`` and ``validation-*`` shards in the
    folder, tfds an existing folder; else one ``DataError`` line naming the folder or pattern.
    """
    if source not in SOURCES:
        raise DataError(f"--source: ImageNet has no source {source!r}; expected 'tfrecord' "
                        f"or 'tfds'")
    folder = data_dir if data_dir is not None else default_dir
    name = getattr(spec, "name", "imagenet")
    if source == "tfds":
        folder = _check_tfds_folder(folder)
    elif folder is not None:
        folder = os.fspath(folder)
    return ImageNetSource(source, folder, name=name)

