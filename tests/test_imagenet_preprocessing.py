"""ImageNet preprocessing against an independent NumPy version of the original's.

The reference (``numpy_reference.tf1_bilinear_resize``) re-derives TF1
``tf.image.resize_images`` (bilinear, ``align_corners=False``, no half-pixel centres) from its
definition: output pixel ``i`` of ``out`` samples the source at ``i * in / out``, between
``floor`` and ``ceil`` (clamped to the last pixel) with linear weights. (``train_preprocess``, the same resize then a random window and
flip, is checked against the same reference in ``test_imagenet_data``.)
"""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from numpy_reference import tf1_bilinear_resize  # noqa: E402

from dcnet_keras.data import imagenet_preprocessing as pre  # noqa: E402
from dcnet_keras.data.shard_writer import encode_jpeg, random_image  # noqa: E402

MEAN = np.array([121.6, 116.6, 102.7])


def numpy_resize_256(image_uint8):
    """Mean subtraction, then the TF1 resize to 256x256, in float64."""
    return tf1_bilinear_resize(image_uint8.astype(np.float64) - MEAN, 256, 256)


def numpy_eval_preprocess(image_uint8):
    """Mean subtraction, then resize to 256x256, then rows/columns 16..239."""
    return numpy_resize_256(image_uint8)[16:240, 16:240]


def jpeg_image(height, width, seed, noise=12.0):
    """A random picture through a real JPEG: (encoded bytes, decoded uint8 pixels)."""
    encoded = encode_jpeg(random_image(height, width, seed, noise=noise), quality=90)
    decoded = tf.io.decode_jpeg(encoded, channels=3).numpy()
    assert decoded.shape == (height, width, 3)
    return encoded, decoded


@pytest.mark.parametrize("height, width", [(300, 217), (131, 97), (256, 256)])
def test_eval_preprocess_matches_numpy_reference(height, width):
    _, image = jpeg_image(height, width, seed=height)
    ours = pre.eval_preprocess(image)
    assert ours.dtype == tf.float32 and tuple(ours.shape) == (224, 224, 3)
    expected = numpy_eval_preprocess(image)
    # float32 arithmetic on values of magnitude <= 255
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-4)


def test_reference_differs_from_half_pixel_centres():
    """The check has teeth: TF2's default resize (half-pixel centres) is far from TF1's."""
    _, image = jpeg_image(300, 217, seed=1, noise=60.0)  # a noisy picture: neighbours differ
    half_pixel = tf.image.resize(tf.cast(image, tf.float32) - MEAN.astype(np.float32),
                                 (256, 256), method="bilinear")[16:240, 16:240].numpy()
    assert np.abs(half_pixel - numpy_eval_preprocess(image)).max() > 10.0


def test_decode_and_batch_forms_agree():
    encoded, image = jpeg_image(300, 217, seed=2)
    single = pre.eval_preprocess(image).numpy()
    np.testing.assert_array_equal(pre.decode_and_eval_preprocess(encoded).numpy(), single)
    _, other = jpeg_image(300, 217, seed=3)
    batch = pre.eval_preprocess(np.stack([image, other])).numpy()
    assert batch.shape == (2, 224, 224, 3)
    np.testing.assert_array_equal(batch[0], single)
    np.testing.assert_array_equal(batch[1], pre.eval_preprocess(other).numpy())


def test_eval_preprocess_inside_tf_function_with_unknown_size():
    _, image = jpeg_image(217, 300, seed=4)
    traced = tf.function(pre.eval_preprocess,
                         input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    np.testing.assert_array_equal(traced(image).numpy(), pre.eval_preprocess(image).numpy())


def test_constants_are_the_originals():
    assert pre.IMAGENET_MEAN_RGB == (121.6, 116.6, 102.7)
    assert (pre.RESIZE_SIZE, pre.CROP_OFFSET, pre.CROP_SIZE) == (256, 16, 224)


def test_wrong_rank_is_a_value_error():
    with pytest.raises(ValueError, match="eval_preprocess"):
        pre.eval_preprocess(np.zeros((224, 224), np.uint8))

