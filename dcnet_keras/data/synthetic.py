"""A small synthetic CIFAR-shaped data set with learnable classes (NumPy only).

For smoke tests and machines without the data: it is NOT CIFAR, and accuracies on it mean
nothing for the paper.
"""

import numpy as np

from dcnet_keras.data.errors import DataError

IMAGE_SHAPE = (32, 32, 3)


def _interpolation_matrix(size, points):
    """[size, points] matrix that linearly interpolates ``points`` values onto ``size`` pixels.

    Row ``i`` samples at ``t = i * (points - 1) / (size - 1)``: weight ``1 - frac(t)`` on
    ``floor(t)`` and ``frac(t)`` on ``floor(t) + 1`` (the last row puts 1 on the last point).
    """
    t = np.arange(size) * (points - 1) / (size - 1)
    low = np.minimum(np.floor(t).astype(int), points - 2)
    frac = t - low
    m = np.zeros((size, points))
    m[np.arange(size), low] = 1.0 - frac
    m[np.arange(size), low + 1] += frac
    return m


def _synthetic_split(templates, count, rng, chunk=2000):
    """``count`` balanced, shuffled (image, label) pairs drawn from ``templates`` with ``rng``."""
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


def synthetic_cifar(num_train=5000, num_test=1000, num_classes=100, seed=0):
    """A small CIFAR-shaped data set whose classes a small conv net learns quickly.

    Each class is a fixed random smooth colour field: 5x5x3 control values uniform in [0, 1)
    (``default_rng([seed, 0])``), interpolated bilinearly over a 36x36 canvas and mapped to
    ``40 + 175 * value``. An image is a random 32x32 window of its class's field (shifts
    0..4 pixels), plus a random brightness offset (normal, sd 20) and pixel noise (normal,
    sd 40), rounded and clipped to uint8. Labels are balanced (``k % num_classes``) and
    shuffled. The train split draws from ``default_rng([seed, 1])``, the test split from
    ``default_rng([seed, 2])``: deterministic given ``seed``, and neither split depends on the
    other's size. The class fields depend only on ``seed`` and ``num_classes``.

    Returns ``(train_images, train_labels, test_images, test_labels)``: uint8 [N, 32, 32, 3] and
    int32 [N] in 0..num_classes-1.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or not 1 <= num_classes <= 256:
        raise DataError(f"synthetic num_classes must be an integer in 1..256, got "
                        f"{num_classes!r}")
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
