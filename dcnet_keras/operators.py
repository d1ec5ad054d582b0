"""The math of every decoupled operator, in one place.

A decoupled convolution (Liu et al., CVPR 2018) replaces the inner product
``<w, x> = |w| |x| cos(theta)`` between a filter ``w`` and an input patch ``x``
by ``f(w, x) = h(|w|, |x|) * g(theta)``: a *magnitude* function ``h`` of the
norms and an *angular* function ``g`` of the angle.  Everything below works on
``keras.ops`` tensors, so it runs on the TensorFlow, JAX and PyTorch backends.

Shared quantities (names of the original TF1 code in brackets):

* ``w_hat = w / sqrt(sum_{kh,kw,cin} w^2 + 1e-4)``, one norm per output
  channel [``_get_filter_norm``].
* ``u = conv2d(x, w_hat)`` (no bias): ``|x| cos(theta)`` up to the eps terms.
* ``xn = sqrt(conv2d(x^2, ones[k, k, Cin, 1]) + 1e-4)`` [``_get_input_norm``],
  the patch norm, one value per output position shared by all channels.  We
  compute the same number as ``conv2d(sum_c x^2, ones[k, k, 1, 1])``: the channel
  sum first, then a one-channel box filter, ``Cin`` times cheaper.
* ``c = u / xn``: the cosine of the angle between patch and filter.
* ``m``: the mean of ``xn`` over batch, height and width [``xnorm_batch_norm``],
  and ``rho = (radius^2 + 1e-4) * m`` the radius of the saturating magnitudes.

Magnitudes ``h(|x|)`` (``v = xn``):

=========  ====================================================  ===============
name       h                                                     original
=========  ====================================================  ===============
sphere     ``alpha``                                             paper only
ball       ``alpha * min(v, rho) / rho``                         ``ball_cos``
tanh       ``alpha * tanh(v / rho)``                             ``tanh_cos``
linear     ``alpha * v``                                         ``linear_*``
seg        ``alpha*v`` if ``v < rho`` else ``beta*v + (alpha-beta)*rho``  ``seg_cos``
log        ``alpha * log(1 + v)``                                paper only
mix        ``alpha * v + beta * log(1 + v)``                     paper only
=========  ====================================================  ===============

Angular functions ``g`` (``theta = arccos(clip(c))``):

=======  ==================================================================
linear   ``1 - 2 theta / pi``
cos      ``c``
sigmoid  ``K * (1 - exp(theta/k - pi/(2k))) / (1 + exp(theta/k - pi/(2k)))``,
         ``K = (1 + exp(-pi/(2k))) / (1 - exp(-pi/(2k)))``
sqcos    ``sign(c) * c^2``
=======  ==================================================================

Weighted operators (paper, "weighted decoupled operators", Table 1) let the filter
norm ``|w| = sqrt(sum w^2 + 1e-4)`` enter the magnitude; three forms
(:data:`WEIGHTINGS`):

* ``linear``: ``h(|w|, |x|) = |w| * h(|x|)`` (the linearly weighted operator);
* ``joint`` (Eq. 15): ``h(|w| |x|)``, the magnitude of the product of the norms, e.g.
  ``alpha * tanh(|w| |x| / rho)`` (``rho`` as unweighted: from the patch norms);
* ``separate`` (Eq. 16): ``h(|x|) * h(|w|) / alpha``, e.g.
  ``alpha * tanh(|w|/rho) * tanh(|x|/rho)``, with ``h(|w|) / alpha = |w|`` for ``sphere``.

The five original variants are reproduced with their own order of operations
(and so their own eps placement): ``ball`` divides ``u`` by
``rho + relu(xn - rho)`` without forming ``c``; ``linear`` with ``cos`` is ``u``
itself, with no patch norm at all; ``tanh`` evaluates ``xn / m / (r^2+1e-4)``.
"""

import math

import numpy as np
from keras import ops

#: eps added to squared norms, as in the original (``_get_filter_norm`` and
#: ``_get_input_norm``).
NORM_EPS = 1e-4
#: eps added to the squared radius: ``radius^2 + 1e-4``.
RADIUS_EPS = 1e-4
#: clip applied to the cosine before ``arccos`` so that its gradient stays finite.
ARCCOS_CLIP = 1e-6

#: how the patch norm is summed: ``box`` (channel sum, then a k x k box filter;
#: the default, cheap) or ``ones_filter`` (the original's [k, k, Cin, 1] ones
#: convolution: the same number, and on TensorFlow the same float32 rounding as
#: the original, for bit-level reproduction of its activations).
PATCH_NORMS = ("box", "ones_filter")
MAGNITUDES = ("sphere", "ball", "tanh", "linear", "seg", "log", "mix")
ANGULARS = ("linear", "cos", "sigmoid", "sqcos")
#: magnitudes whose value depends on the radius ``rho``.
MAGNITUDES_WITH_RADIUS = ("ball", "tanh", "seg")
#: default ``beta`` per magnitude (``seg``: the original's 0.5 slope past rho).
DEFAULT_BETA = {"seg": 0.5, "mix": 1.0}
#: the weighted forms: ``linear`` ``|w| h(|x|)``, ``joint`` ``h(|w| |x|)`` (Eq. 15),
#: ``separate`` ``h(|w|) h(|x|) / alpha`` (Eq. 16).
WEIGHTINGS = ("linear", "joint", "separate")


def filter_norm(kernel):
    """``sqrt(sum_{kh,kw,cin} w^2 + 1e-4)``, shape ``[Cout]``."""
    return ops.sqrt(ops.sum(ops.square(kernel), axis=(0, 1, 2)) + NORM_EPS)


def normalize_filter(kernel):
    """``w / sqrt(sum w^2 + 1e-4)`` per output channel [``filt /= wnorm``].

    Also the weight projection of the original training scripts.
    """
    return kernel / filter_norm(kernel)


def conv2d(x, kernel, strides, padding):
    """NHWC convolution without bias; ``padding`` is TF's ``"same"``/``"valid"``."""
    return ops.conv(x, kernel, strides=strides, padding=padding)


def patch_norm(x, kernel_size, strides, padding, method="box"):
    """``sqrt(conv2d(x^2, ones[k, k, Cin, 1]) + 1e-4)``, shape ``[N, H', W', 1]``.

    Computed as the channel sum of ``x^2`` followed by a ``[k, k, 1, 1]`` box
    filter with the layer's stride and padding (zero padding counts as zeros),
    which is the same number as the original's ``Cin``-channel ones filter
    (``method="ones_filter"`` computes that filter itself).
    """
    if method == "ones_filter":
        return patch_norm_ones_filter(x, kernel_size, strides, padding)
    kh, kw = kernel_size
    energy = ops.sum(ops.square(x), axis=-1, keepdims=True)
    if (kh, kw) == (1, 1):
        window_sum = energy[:, :: strides[0], :: strides[1], :]
    else:
        ones = ops.ones((kh, kw, 1, 1), dtype=energy.dtype)
        window_sum = conv2d(energy, ones, strides, padding)
    return ops.sqrt(window_sum + NORM_EPS)


def patch_norm_ones_filter(x, kernel_size, strides, padding):
    """The original's patch norm: a ``[k, k, Cin, 1]`` ones filter on ``x^2``.

    Rounds as the original does on TensorFlow; about as fast as the box form
    forward, slower backward (see ``benchmarks/bench_models.py``).
    """
    kh, kw = kernel_size
    ones = ops.ones((kh, kw, x.shape[-1], 1), dtype=x.dtype)
    return ops.sqrt(conv2d(ops.square(x), ones, strides, padding) + NORM_EPS)


def squared_radius(radius):
    """``radius^2 + 1e-4`` [``get_variable('radius') ** 2 + 1e-4``]."""
    return ops.square(radius) + RADIUS_EPS


def _scaled(alpha, value):
    """``alpha * value``, skipping the full-size multiply when ``alpha`` is 1."""
    return value if alpha == 1.0 else alpha * value


def magnitude(name, v, rho_parts, alpha, beta):
    """``h(v)`` for a norm ``v`` (any shape broadcasting with ``rho``).

    ``rho_parts`` is ``(scale, r2)`` with ``rho = r2 * scale``: ``scale`` is the
    mean patch norm ``m`` (or 1 for an absolute radius) and ``r2`` the squared
    radius plus eps (or the fixed radius).  ``tanh`` divides by the two parts in
    turn, as the original does.
    """
    if name == "sphere":
        return alpha * ops.ones_like(v)
    if name == "linear":
        return _scaled(alpha, v)
    if name == "log":
        return _scaled(alpha, ops.log1p(v))
    if name == "mix":
        return alpha * v + beta * ops.log1p(v)
    scale, r2 = rho_parts
    if name == "tanh":
        return _scaled(alpha, ops.tanh(v / scale / r2))
    rho = r2 * scale
    if name == "ball":
        # min(v, rho) / rho written as the original writes ball_cos: finite also
        # at rho = 0 (a moving average that has not been updated yet).
        return _scaled(alpha, v / (rho + ops.relu(v - rho)))
    if name == "seg":
        return ops.where(v < rho, _scaled(alpha, v), beta * v + (alpha - beta) * rho)
    raise ValueError(f"magnitude: unknown magnitude {name!r}; expected one of {MAGNITUDES}")


def sigmoid_angular_scale(k):
    """``(1 + exp(-pi/(2k))) / (1 - exp(-pi/(2k)))`` so that ``g(0) = 1``."""
    e = math.exp(-math.pi / (2.0 * k))
    return (1.0 + e) / (1.0 - e)


def largest_finite(dtype):
    """The largest finite number of a float dtype (``"float16"``, ``"bfloat16"``,
    ``"float32"``, ``"float64"``)."""
    if str(dtype) == "bfloat16":
        return float.fromhex("0x1.fep127")
    return float(np.finfo(str(dtype)).max)


def smallest_sigmoid_k(dtype="float32"):
    """``pi / (2 ln M)``, ``M`` the largest finite number of ``dtype`` (0.0177045 for float32).

    The sigmoid's exponent ``theta/k - pi/(2k) = (theta - pi/2) / k`` peaks at
    the largest angle, ``theta = arccos(-1 + ARCCOS_CLIP) < pi``, so it stays
    below ``pi/(2k)``; ``exp`` of it is finite whenever ``exp(pi/(2k)) <= M``,
    that is ``k >= pi / (2 ln M)``.  (The margin from the clip, ``(pi -
    theta_max)/k`` = 0.08 at the bound in float32, is far above the rounding
    of the exponent.)  A smaller ``k`` makes ``exp`` overflow for patches
    nearly opposite the filter and ``(1 - z) / (1 + z)`` is ``inf / inf = nan``.
    The scale ``(1 + e^(-pi/2k)) / (1 - e^(-pi/2k))`` tends to 1 there and
    never overflows; it does for large ``k`` instead (about ``4k/pi``, and
    ``1 - e^(-pi/2k)`` is 0 in float64 beyond ``k`` = 2.8e16).
    """
    return math.pi / (2.0 * math.log(largest_finite(dtype)))


def angular(name, c, sigmoid_k=0.3):
    """``g(theta)`` from the cosine ``c``."""
    if name == "cos":
        return c
    if name == "sqcos":
        return c * (ops.sign(c) * c)
    theta = ops.arccos(ops.clip(c, -1.0 + ARCCOS_CLIP, 1.0 - ARCCOS_CLIP))
    if name == "linear":
        return 1.0 - (2.0 / math.pi) * theta
    if name == "sigmoid":
        z = ops.exp(theta / sigmoid_k - math.pi / (2.0 * sigmoid_k))
        return sigmoid_angular_scale(sigmoid_k) * (1.0 - z) / (1.0 + z)
    raise ValueError(f"angular: unknown angular function {name!r}; expected one of {ANGULARS}")


def decoupled_response(u, xn, magnitude_name, angular_name, rho_parts, alpha, beta,
                       sigmoid_k=0.3, weight_factor=None, weight_norm=None):
    """``f = h(|x|) * g(theta)`` from ``u = conv(x, w_hat)`` and ``xn = |x|``.

    ``weight_factor`` (shape ``[Cout]``) multiplies the magnitude (the ``linear`` and
    ``separate`` weighted forms); ``weight_norm`` (``|w|``, shape ``[Cout]``) makes the
    magnitude ``h(|w| |x|)`` (the ``joint`` form, Eq. 15).  ``xn`` may be ``None`` only
    for ``linear`` x ``cos`` without ``weight_norm`` (= ``alpha*u``).
    """
    if weight_norm is not None:
        out = angular(angular_name, u / xn, sigmoid_k) * magnitude(
            magnitude_name, xn * weight_norm, rho_parts, alpha, beta)
    elif magnitude_name == "linear" and angular_name == "cos":
        out = _scaled(alpha, u)  # linear_cos: the normalised-filter convolution itself
    elif magnitude_name == "ball" and angular_name == "cos":
        scale, r2 = rho_parts  # ball_cos: u / (rho + relu(xn - rho))
        rho = r2 * scale
        out = _scaled(alpha, u) / (rho + ops.relu(xn - rho))
    else:
        c = u / xn
        out = angular(angular_name, c, sigmoid_k) * magnitude(
            magnitude_name, xn, rho_parts, alpha, beta)
    if weight_factor is not None:
        out = out * weight_factor
    return out


def weight_magnitude_factor(magnitude_name, kernel, rho_parts, alpha, beta,
                            weighting="separate"):
    """The factor a weighted form multiplies ``h(|x|) g`` by, shape ``[Cout]``:
    ``|w|`` (``linear``, and ``separate`` for ``sphere``) or ``h(|w|) / alpha``
    (``separate``); ``None`` for ``joint``, which weights inside ``h``
    (:func:`decoupled_response`'s ``weight_norm``)."""
    if weighting == "joint":
        return None
    wn = filter_norm(kernel)
    if weighting == "linear" or magnitude_name == "sphere":
        return wn
    return magnitude(magnitude_name, wn, rho_parts, alpha, beta) / alpha


def weighted_filter_gradient(gradient, kernel):
    """The "weighted gradients" of the paper's Table 1 (our reading): a decoupled
    filter's gradient times its norm, ``dL/dw * |w|`` per output channel,
    ``|w| = sqrt(sum_{kh,kw,cin} w^2 + 1e-4)``."""
    return gradient * ops.cast(filter_norm(kernel), gradient.dtype)


def orthogonality_penalty(kernel, strength):
    """``strength * sum((W^T W - I)^2) / 2`` [``_add_orthogonal_constraint``].

    ``W`` is the filter reshaped to ``[k*k*Cin, Cout]`` with every column
    divided by ``sqrt(|col|^2 + 1e-4)``.
    """
    cout = kernel.shape[-1]
    w = ops.reshape(kernel, (-1, cout))
    w = w / ops.sqrt(ops.sum(ops.square(w), axis=0, keepdims=True) + NORM_EPS)
    gram = ops.matmul(ops.transpose(w), w)
    return strength * ops.sum(ops.square(gram - ops.eye(cout, dtype=gram.dtype))) / 2.0


def weight_decay_penalty(weight, wd):
    """``wd * sum(w^2) / 2`` [TF1 ``l2_regularizer(wd)`` = ``wd * tf.nn.l2_loss``]."""
    return wd * ops.sum(ops.square(weight)) / 2.0


def tf1_prelu(x, alpha):
    """``relu(x) + alpha * (x - |x|) * 0.5`` [ImageNet ``prelu``]."""
    return ops.relu(x) + alpha * (x - ops.abs(x)) * 0.5


def one_minus_decay(decay):
    """``1 - decay`` in float32, as ``tf.train.ExponentialMovingAverage`` forms it."""
    return float(np.float32(1.0) - np.float32(decay))
