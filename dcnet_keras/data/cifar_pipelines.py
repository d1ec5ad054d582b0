"""The CIFAR train and test pipelines (``tf.data``) over in-memory uint8 arrays.

``train_dataset``: an endless stream (``repeat``) through a shuffle buffer (the original's
20000-example ``shuffle_batch`` queue), then per image one of the augmentations
(``AUGMENTATIONS``):

- ``pad_crop_flip`` (the DCNet scripts, SPEC section 5): SYMMETRIC 4-pixel padding (mirror
  including the edge pixel), a random 32x32 crop of the 40x40 result, a random horizontal flip;
- ``flip`` (the authors' CNN-9 recipe, SphereNet ``cifar10_input.distorted_inputs``, whose
  crop, brightness, contrast and standardisation are commented out): a random horizontal flip
  only;
- ``none``: the image unchanged.

The randomness is stateless, keyed by ``(seed, k)`` for the k-th image of the stream, so the
result does not depend on the number of parallel calls; ``flip`` flips exactly the images that
``pad_crop_flip`` flips with the same seed. Batches of float32 images in 0..255 and int32
labels; the last partial batch is dropped. The iterator can be saved with
``tf.train.Checkpoint(iterator=...)`` (position and shuffle buffer).

``test_dataset``: one ordered pass over all images, unchanged (float32), last batch kept.

The model does its own scaling (``(rgb - 127.5) / 128``); nothing here standardises the images.
"""

import numpy as np
import tensorflow as tf

from dcnet_keras.data.errors import DataError

IMAGE_SHAPE = (32, 32, 3)
PAD = 4
AUGMENTATIONS = ("pad_crop_flip", "flip", "none")


def check_arrays(images, labels):
    """``(images, int32 labels)`` after checking uint8 [N, 32, 32, 3] images, N >= 1, [N] labels."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise DataError(f"images must be uint8 [N, 32, 32, 3], got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DataError(f"labels must have shape [{images.shape[0]}], got {labels.shape}")
    if images.shape[0] == 0:
        raise DataError("no images")
    return images, labels.astype(np.int32)


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise DataError(f"batch_size must be an integer >= 1, got {batch_size!r}")


def _augmenter(seed, augmentation):
    """``(k, (image, label)) -> (float32 image, label)``: ``augmentation`` keyed by (seed, k)."""
    base = tf.constant(seed, tf.int64)
    paddings = tf.constant([[PAD, PAD], [PAD, PAD], [0, 0]])
    crop = augmentation == "pad_crop_flip"
    flip = augmentation in ("pad_crop_flip", "flip")

    def augment(index, element):
        image, label = element
        crop_seed, flip_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.stack([base, index]), num=2))
        # Padding, cropping and flipping only move pixels, so they run on uint8 (4x fewer bytes)
        # and the cast comes last: bit-identical to casting first.
        if crop:
            image = tf.pad(image, paddings, mode="SYMMETRIC")
            image = tf.image.stateless_random_crop(image, IMAGE_SHAPE, seed=crop_seed)
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
        return tf.cast(image, tf.float32), label

    return augment


def train_dataset(images, labels, batch_size, seed, shuffle_buffer=20000,
                  augmentation="pad_crop_flip"):
    """Endless, shuffled, augmented training batches: (float32 [B, 32, 32, 3] in 0..255, int32 [B]).

    The order is repeat -> shuffle(buffer) -> enumerate -> augment -> batch, like the original's
    queue (a file read over and over, through a 20000-example shuffling queue): the buffer mixes
    across epoch boundaries, so each image is seen once per epoch only on average. A buffer
    larger than the data set is cut to its size (it would only hold duplicates).

    ``augmentation``: one of ``AUGMENTATIONS`` (module docstring). Deterministic given ``seed``
    (and TensorFlow's global seed, which ``shuffle`` also reads when one is set).
    ``tf.train.Checkpoint(iterator=iter(ds))`` saves the position, including the shuffle buffer
    (about 3 KiB per buffered image).
    """
    if augmentation not in AUGMENTATIONS:
        raise DataError(f"augmentation: expected one of {', '.join(AUGMENTATIONS)} for CIFAR, "
                        f"got {augmentation!r}")
    images, labels = check_arrays(images, labels)
    _check_batch_size(batch_size)
    buffer = int(max(1, min(shuffle_buffer, images.shape[0])))
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.repeat().shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.enumerate()
    ds = ds.map(_augmenter(seed, augmentation), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def test_dataset(images, labels, batch_size=100):
    """One ordered pass over all images, unchanged: (float32 [b, 32, 32, 3], int32 [b]).

    The last batch is partial when ``batch_size`` does not divide the number of images. Build it
    once and call ``iter()`` for each evaluation: every iterator is a fresh pass.
    """
    images, labels = check_arrays(images, labels)
    _check_batch_size(batch_size)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
