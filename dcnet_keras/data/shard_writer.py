"""Small ImageNet-format data for tests and benchmarks: random pictures and slim shards.

``random_image`` draws a picture with structure at every scale (a smooth colour field plus
pixel noise), so every crop window differs and the JPEG sizes are like real photographs';
``write_shards`` writes them (or raw bytes) as slim-format TFRecord shards, the format that
``dcnet_keras.data.imagenet_records`` reads.
"""

import os

import numpy as np
import tensorflow as tf

from dcnet_keras.data.errors import DataError


def random_image(height, width, seed, noise=12.0):
    """A uint8 ``[height, width, 3]`` picture, deterministic given ``seed``.

    With ``rng = numpy.random.default_rng(seed)``, ``y, x`` the row and column divided by 50,
    channel ``c`` is ``128 + 60 sin(a_c y + b_c x + p_c)`` with ``a_c, b_c ~ U(0.5, 2)``,
    ``p_c ~ U(0, 6)`` (drawn in that order per channel), plus Gaussian noise of standard
    deviation ``noise``; rounded and clipped to 0..255.
    """
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise DataError(f"random_image: height and width must be integers >= 1, got "
                        f"{height} x {width}")
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:int(height), 0:int(width)] / 50.0
    image = np.stack([128 + 60 * np.sin(y * rng.uniform(0.5, 2) + x * rng.uniform(0.5, 2)
                                        + rng.uniform(0, 6)) for _ in range(3)], -1)
    image += rng.normal(0, noise, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def encode_jpeg(image, quality=95):
    """uint8 ``[H, W, 3]`` -> JPEG bytes (``tf.io.encode_jpeg`` at ``quality``)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"encode_jpeg: image must be uint8 [H, W, 3], got {image.dtype} "
                        f"{image.shape}")
    return tf.io.encode_jpeg(image, quality=quality).numpy()


def _bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _example(encoded, height, width, label, index):
    feature = {
        "image/encoded": _bytes_feature(encoded),
        "image/format": _bytes_feature(b"JPEG"),
        "image/colorspace": _bytes_feature(b"RGB"),
        "image/channels": _int64_feature(3),
        "image/height": _int64_feature(height),
        "image/width": _int64_feature(width),
        "image/class/label": _int64_feature(label),
        "image/filename": _bytes_feature(f"image_{index:06d}.JPEG".encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shards(folder, split, images, labels, num_shards, quality=95):
    """Write slim-format TFRecord shards ``<split>-NNNNN-of-MMMMM``; returns their paths.

    ``images``: uint8 [H, W, 3] arrays of any sizes (JPEG-encoded with ``tf.io.encode_jpeg``
    at ``quality``) or ``bytes`` (written as they are, e.g. a corrupt JPEG; height and width
    are then written as 0); ``labels``: ints written unchanged as ``image/class/label``
    (slim's 1..1000; any value, to test checks). Records go to the shards in order, in
    contiguous runs as even as possible: shard ``s`` holds records
    ``round(s n / S) .. round((s + 1) n / S) - 1`` (a shard may be empty when there are
    more shards than images).
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
                    encoded = encode_jpeg(image, quality)
                    height, width = image.shape[:2]
                writer.write(_example(encoded, height, width, labels[k], k))
        paths.append(path)
    return paths
