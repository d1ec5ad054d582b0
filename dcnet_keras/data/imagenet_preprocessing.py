"""ImageNet preprocessing of the original, training and evaluation (TensorFlow only).

The mean, the sizes and the resize are written here once; the input pipelines
(``dcnet_keras.data.imagenet``) and the serving signatures call these functions.

The original (``dcnet_imagenet/alex2012_image_processing.py``) prepares one
validation image as follows:

1. ``decode_jpeg``: ``tf.image.decode_jpeg(buffer, channels=3)`` cast to float32
   (values 0..255, RGB);
2. ``image_preprocessing``: ``image - imagenet_mean`` with
   ``imagenet_mean = [121.6, 116.6, 102.7]`` (per RGB channel; no scaling), the
   mean is subtracted **before** the resize;
3. ``eval_image``: ``tf.image.resize_images(image, [256, 256])`` (TF1: bilinear,
   ``align_corners=False``, no half-pixel centres; the aspect ratio is not kept),
   then ``tf.image.central_crop(image, 0.875)``, which on 256 pixels is the
   window starting at ``int((256 - 256 * 0.875) / 2) = 16`` of size 224.

TF1's bilinear resize samples output pixel ``(i, j)`` of an ``out_h x out_w``
image at source coordinates ``y = i * in_h / out_h``, ``x = j * in_w / out_w``
(no half-pixel offset), between the neighbours ``floor(y)`` and
``min(ceil(y), in_h - 1)`` with weight ``y - floor(y)`` (the same along ``x``):

    top    = I[y0, x0] + (I[y0, x1] - I[y0, x0]) * (x - x0)
    bottom = I[y1, x0] + (I[y1, x1] - I[y1, x0]) * (x - x0)
    out    = top + (bottom - top) * (y - y0)

TF2's ``tf.image.resize`` samples at half-pixel centres instead and differs by
tens of grey levels on noisy images; ``tf.compat.v1.image.resize_bilinear(...,
align_corners=False, half_pixel_centers=False)`` gives the TF1 numbers exactly;
:func:`resize_tf1_bilinear` calls its kernel (``ResizeBilinear``) directly.

:func:`eval_preprocess` is steps 2-3 (what the network's 224x224 input
receives); :func:`decode_and_eval_preprocess` adds step 1.
:func:`mean_subtract_and_resize` is the part that training shares:
:func:`train_preprocess` (the original's ``distort_image``) then takes a random
224x224 crop and a random horizontal flip, drawn statelessly from a seed pair.
"""

import tensorflow as tf

IMAGENET_MEAN_RGB = (121.6, 116.6, 102.7)
RESIZE_SIZE = 256
CROP_SIZE = 224
CROP_FRACTION = 0.875
CROP_OFFSET = int((RESIZE_SIZE - RESIZE_SIZE * CROP_FRACTION) / 2)  # 16, as tf.image.central_crop


def resize_tf1_bilinear(images, size):
    """TF1 ``tf.image.resize_images`` (bilinear, no half-pixel centres) to ``size``.

    ``images``: ``[H, W, C]`` or ``[N, H, W, C]``, any real dtype; returns float32.
    """
    images = tf.convert_to_tensor(images)
    single = images.shape.rank == 3
    batch = images[tf.newaxis] if single else images
    # The kernel behind tf.compat.v1.image.resize_bilinear (without its deprecation warning).
    resized = tf.raw_ops.ResizeBilinear(images=tf.cast(batch, tf.float32),
                                        size=tf.constant(size, tf.int32),
                                        align_corners=False, half_pixel_centers=False)
    return resized[0] if single else resized


def mean_subtract_and_resize(images):
    """``resize_tf1_bilinear(float(image) - IMAGENET_MEAN_RGB, [256, 256])``.

    ``images``: ``[H, W, 3]`` or ``[N, H, W, 3]`` RGB in 0..255 (uint8 or float).
    Returns float32 ``[256, 256, 3]`` (or ``[N, 256, 256, 3]``).
    """
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    centred = images - tf.constant(IMAGENET_MEAN_RGB, tf.float32)
    return resize_tf1_bilinear(centred, (RESIZE_SIZE, RESIZE_SIZE))


def central_crop(images):
    """The original's ``tf.image.central_crop(image, 0.875)`` of a 256x256 image.

    Rows and columns ``16 .. 239``: ``[224, 224, C]`` (or ``[N, 224, 224, C]``).
    """
    end = CROP_OFFSET + CROP_SIZE
    return images[..., CROP_OFFSET:end, CROP_OFFSET:end, :]


def eval_preprocess(image):
    """The original's evaluation preprocessing of a decoded RGB image of any size.

    ``image``: uint8 (or float in 0..255) ``[H, W, 3]``; a batch ``[N, H, W, 3]`` of
    equally sized images works too (a tensor of unknown rank is taken as one image).
    Returns float32 ``[224, 224, 3]``
    (``[N, 224, 224, 3]``): ``central_crop(resize_tf1_bilinear(image - mean,
    [256, 256]))``, the network's own input.
    """
    images = tf.convert_to_tensor(image)
    if images.shape.rank is None:  # e.g. from a decoder without a static shape
        images = tf.ensure_shape(images, [None, None, 3])
    if images.shape.rank not in (3, 4):
        raise ValueError(f"eval_preprocess: expected an image [H, W, 3] or a batch "
                         f"[N, H, W, 3], received shape {images.shape}")
    out = central_crop(mean_subtract_and_resize(images))
    return tf.ensure_shape(out, out.shape[:-3] + [CROP_SIZE, CROP_SIZE, 3])


def train_preprocess(image_uint8, seed_pair):
    """The original's training preprocessing, its randomness keyed by ``seed_pair``.

    ``image_uint8``: RGB ``[H, W, 3]`` of any size; ``seed_pair``: int ``[2]``.
    ``seeds = stateless_split(seed_pair, 2)``; then
    ``flip(crop(mean_subtract_and_resize(image), 224x224, seeds[0]), seeds[1])``:
    the 256x256 TF1 resize of ``image - mean`` (aspect not kept), a random
    224x224 window (offsets uniform in 0..32) and a left-right flip with
    probability 1/2.  The same ``seed_pair`` gives the same output, whatever
    the pipeline's parallelism.  Returns float32 ``[224, 224, 3]``.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed_pair, tf.int64), num=2)
    image = mean_subtract_and_resize(image_uint8)
    image = tf.image.stateless_random_crop(image, [CROP_SIZE, CROP_SIZE, 3], seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1])


def decode_image_rgb(encoded):
    """Encoded JPEG/PNG (or GIF/BMP) bytes -> uint8 ``[H, W, 3]``.

    JPEGs decode as the original's ``tf.image.decode_jpeg(buffer, channels=3)``;
    grey or RGBA images are converted to RGB.
    """
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def decode_and_eval_preprocess(encoded):
    """Encoded image bytes -> the network's float32 ``[224, 224, 3]`` input."""
    return eval_preprocess(decode_image_rgb(encoded))
