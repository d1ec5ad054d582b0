"""Brute-force float64 NumPy references: the decoupled convolution, and TF1's bilinear resize.

The resize (:func:`tf1_bilinear_resize`, last section) is the ImageNet tests' reference.

Written from the formulas of SPEC.md section 1 and the paper (Liu et al.,
CVPR 2018), independently of ``dcnet_keras``: nothing here imports or mirrors
the library's code.  It is deliberately slow and literal: explicit Python loops
over output positions, over the cells of every patch and over output channels.

For a filter ``w`` ``[kh, kw, Cin, Cout]`` and an NHWC input ``x``:

* every output position ``(n, i, j)`` has a patch ``P`` ``[kh, kw, Cin]`` cut
  from the zero-padded input (TensorFlow padding: SAME pads
  ``max((ceil(H/s) - 1) * s + k - H, 0)`` cells in total, ``total // 2`` at the
  top/left and the extra cell at the bottom/right; VALID pads nothing);
* ``|x| = sqrt(sum P^2 + 1e-4)``;
* ``|w|_o = sqrt(sum_{kh,kw,cin} w[..., o]^2 + 1e-4)`` and ``w_hat = w / |w|``;
* ``u = <P, w_hat_o>``, ``c = u / |x|``, ``theta = arccos(c)``;
* ``m`` = mean of ``|x|`` over batch and output positions (training) or a given
  moving value (inference), plus ``mean_epsilon``;
* ``rho_o = (radius_o^2 + 1e-4) * m`` for a learned radius, ``R * m`` for a
  fixed relative radius ``R`` and ``R`` for a fixed absolute one;
* output ``h(|x|) * g(theta)``, times ``h(|w|_o) / alpha`` (``|w|_o`` for
  sphere) for the weighted operators.

Magnitudes ``h(v)``:  sphere ``alpha``; ball ``alpha min(v, rho) / rho``;
tanh ``alpha tanh(v / rho)``; linear ``alpha v``; seg ``alpha v`` below rho
else ``beta v + (alpha - beta) rho``; log ``alpha log(1 + v)``;
mix ``alpha v + beta log(1 + v)``.

Angular ``g(theta)``: linear ``1 - 2 theta / pi``; cos ``cos theta``;
sigmoid ``K (1 - e^(theta/k - pi/2k)) / (1 + e^(theta/k - pi/2k))`` with
``K = (1 + e^(-pi/2k)) / (1 - e^(-pi/2k))``; sqcos ``sign(cos) cos^2``.

Two of the original code's variants are written in their own exact form:
ball x cos ``alpha u / (rho + relu(|x| - rho))`` and linear x cos
``alpha u``.  (Both equal the general product ``h * g``.)

The angle is taken as the exact ``arccos`` (clipped to [-1, 1] only to stay in
its domain); the library clips the cosine slightly inside (-1, 1) for finite
gradients, which only matters when |c| is within ~1e-6 of 1.
"""

import math
from dataclasses import dataclass

import numpy as np

EPS = 1e-4  # added to every squared norm and to the squared radius (SPEC.md 1)

MAGNITUDE_NAMES = ("sphere", "ball", "tanh", "linear", "seg", "log", "mix")
ANGULAR_NAMES = ("linear", "cos", "sigmoid", "sqcos")
RADIUS_MAGNITUDES = ("ball", "tanh", "seg")
BETA_DEFAULTS = {"seg": 0.5, "mix": 1.0}


def _pair(value):
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def axis_geometry(size, k, s, padding):
    """``(output size, cells padded before)`` along one spatial axis, TF rules."""
    if padding == "same":
        out = -(-size // s)  # ceil(size / s)
        total = max((out - 1) * s + k - size, 0)
        return out, total // 2
    if padding == "valid":
        return (size - k) // s + 1, 0
    raise ValueError(f"padding: {padding!r}")


def extract_patches(x, kernel_size, strides, padding):
    """All patches, ``[N, H', W', kh, kw, Cin]``; padded cells are zeros.

    Built cell by cell with explicit loops over positions and patch cells.
    """
    x = np.asarray(x, dtype=np.float64)
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(strides)
    n, height, width, cin = x.shape
    out_h, top = axis_geometry(height, kh, sh, padding)
    out_w, left = axis_geometry(width, kw, sw, padding)
    patches = np.zeros((n, out_h, out_w, kh, kw, cin), dtype=np.float64)
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                for a in range(kh):
                    row = i * sh - top + a
                    if row < 0 or row >= height:
                        continue
                    for d in range(kw):
                        col = j * sw - left + d
                        if col < 0 or col >= width:
                            continue
                        for ch in range(cin):
                            patches[b, i, j, a, d, ch] = x[b, row, col, ch]
    return patches


def patch_norms_from_patches(patches):
    """``sqrt(sum P^2 + 1e-4)`` for every position, ``[N, H', W']``."""
    n, out_h, out_w = patches.shape[:3]
    norms = np.zeros((n, out_h, out_w), dtype=np.float64)
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                p = patches[b, i, j]
                norms[b, i, j] = math.sqrt(float(np.sum(p * p)) + EPS)
    return norms


def patch_norms(x, kernel_size, strides, padding):
    """Patch norm of every output position, ``[N, H', W', 1]``."""
    norms = patch_norms_from_patches(extract_patches(x, kernel_size, strides, padding))
    return norms[..., None]


def filter_norms(kernel):
    """``sqrt(sum_{kh,kw,cin} w^2 + 1e-4)`` per output channel, ``[Cout]``."""
    kernel = np.asarray(kernel, dtype=np.float64)
    cout = kernel.shape[-1]
    norms = np.zeros(cout, dtype=np.float64)
    for o in range(cout):
        w = kernel[..., o]
        norms[o] = math.sqrt(float(np.sum(w * w)) + EPS)
    return norms


def magnitude_value(name, v, rho, alpha, beta):
    """``h(v)`` for one norm ``v`` (python floats)."""
    if name == "sphere":
        return alpha
    if name == "ball":
        return alpha * min(v, rho) / rho
    if name == "tanh":
        return alpha * math.tanh(v / rho)
    if name == "linear":
        return alpha * v
    if name == "seg":
        if v < rho:
            return alpha * v
        return beta * v + (alpha - beta) * rho
    if name == "log":
        return alpha * math.log(1.0 + v)
    if name == "mix":
        return alpha * v + beta * math.log(1.0 + v)
    raise ValueError(f"magnitude: {name!r}")


def angular_value(name, c, sigmoid_k=0.3):
    """``g(theta)`` with ``theta = arccos(c)`` (python floats)."""
    theta = math.acos(min(1.0, max(-1.0, c)))
    if name == "linear":
        return 1.0 - 2.0 * theta / math.pi
    if name == "cos":
        return math.cos(theta)
    if name == "sigmoid":
        k = sigmoid_k
        big_k = (1.0 + math.exp(-math.pi / (2 * k))) / (1.0 - math.exp(-math.pi / (2 * k)))
        z = math.exp(theta / k - math.pi / (2 * k))
        return big_k * (1.0 - z) / (1.0 + z)
    if name == "sqcos":
        cos = math.cos(theta)
        return math.copysign(cos * cos, cos) if cos != 0 else 0.0
    raise ValueError(f"angular: {name!r}")


@dataclass
class Reference:
    output: np.ndarray       # [N, H', W', Cout]
    patch_norm: np.ndarray   # [N, H', W']
    mean: float              # m (None when no magnitude needs it)
    rho: np.ndarray          # [Cout] (None when the magnitude has no radius)
    cosine: np.ndarray       # [N, H', W', Cout]


def decoupled_conv2d(x, kernel, *, strides=1, padding="same", magnitude="tanh",
                     angular="cos", alpha=1.0, beta=None, radius=None, fixed_radius=None,
                     relative_radius=True, sigmoid_k=0.3, weighted=False, training=True,
                     moving_mean=None, mean_epsilon=0.0):
    """The decoupled convolution, brute force, float64.

    ``radius``: the learned radius ``[Cout]`` (used when ``fixed_radius`` is
    None).  ``fixed_radius``: a number ``R``, ``rho = R * m`` or (with
    ``relative_radius=False``) ``rho = R``.  ``training``: ``m`` is the batch
    mean of the patch norms, else ``moving_mean``.
    """
    if magnitude not in MAGNITUDE_NAMES or angular not in ANGULAR_NAMES:
        raise ValueError(f"unknown pair {magnitude!r} x {angular!r}")
    if beta is None:
        beta = BETA_DEFAULTS.get(magnitude, 0.0)
    alpha = float(alpha)
    beta = float(beta)
    kernel = np.asarray(kernel, dtype=np.float64)
    kh, kw, cin, cout = kernel.shape
    patches = extract_patches(x, (kh, kw), strides, padding)
    norms = patch_norms_from_patches(patches)
    n, out_h, out_w = norms.shape
    wnorm = filter_norms(kernel)

    # m: mean patch norm over batch and output positions (a plain loop sum).
    mean = None
    rho = None
    if magnitude in RADIUS_MAGNITUDES:
        rho = np.zeros(cout, dtype=np.float64)
        if fixed_radius is not None and not relative_radius:
            rho[:] = float(fixed_radius)
        else:
            if training:
                total = 0.0
                for b in range(n):
                    for i in range(out_h):
                        for j in range(out_w):
                            total += norms[b, i, j]
                mean = total / (n * out_h * out_w)
            else:
                mean = float(moving_mean)
            mean += mean_epsilon
            for o in range(cout):
                if fixed_radius is not None:
                    rho[o] = float(fixed_radius) * mean
                else:
                    rho[o] = (float(radius[o]) ** 2 + EPS) * mean

    # Weighted operators: "linear" |w| h(|x|); "separate" (Eq. 16, also True)
    # h(|w|) / alpha * h(|x|) (|w| for sphere); "joint" (Eq. 15) h(|w| |x|), below.
    if weighted is True:
        weighted = "separate"
    weight_factor = np.ones(cout, dtype=np.float64)
    if weighted in ("linear", "separate"):
        for o in range(cout):
            r = None if rho is None else rho[o]
            if magnitude == "sphere" or weighted == "linear":
                weight_factor[o] = wnorm[o]
            else:
                weight_factor[o] = magnitude_value(magnitude, wnorm[o], r, alpha, beta) / alpha

    out = np.zeros((n, out_h, out_w, cout), dtype=np.float64)
    cosine = np.zeros((n, out_h, out_w, cout), dtype=np.float64)
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                p = patches[b, i, j]
                xn = norms[b, i, j]
                for o in range(cout):
                    w_hat = kernel[..., o] / wnorm[o]
                    u = float(np.sum(p * w_hat))
                    c = u / xn
                    cosine[b, i, j, o] = c
                    r = None if rho is None else rho[o]
                    if weighted == "joint":
                        value = (magnitude_value(magnitude, wnorm[o] * xn, r, alpha, beta)
                                 * angular_value(angular, c, sigmoid_k))
                    elif magnitude == "ball" and angular == "cos":
                        value = alpha * u / (r + max(xn - r, 0.0))
                    elif magnitude == "linear" and angular == "cos":
                        value = alpha * u
                    else:
                        value = (magnitude_value(magnitude, xn, r, alpha, beta)
                                 * angular_value(angular, c, sigmoid_k))
                    out[b, i, j, o] = value * weight_factor[o]
    return Reference(output=out, patch_norm=norms, mean=mean, rho=rho, cosine=cosine)


# --------------------------------------------------------------------------- TF1 bilinear resize


def tf1_bilinear_resize(image, out_h, out_w):
    """TF1 ``tf.image.resize_images(image, [out_h, out_w])`` of ``image`` ``[H, W, C]``, float64.

    Written from the definition (``align_corners=False``, no half-pixel centres): output
    pixel ``(i, j)`` samples the source at ``y = i * H / out_h``, ``x = j * W / out_w``
    between the rows ``y0 = floor(y)``, ``y1 = min(ceil(y), H - 1)`` and the columns
    ``x0 = floor(x)``, ``x1 = min(ceil(x), W - 1)``:

        top    = I[y0, x0] + (I[y0, x1] - I[y0, x0]) * (x - x0)
        bottom = I[y1, x0] + (I[y1, x1] - I[y1, x0]) * (x - x0)
        out    = top + (bottom - top) * (y - y0)

    One explicit loop over output rows, vectorised over columns and channels.
    """
    image = np.asarray(image, dtype=np.float64)
    in_h, in_w = image.shape[:2]

    def taps(out_size, in_size):
        source = np.arange(out_size) * (in_size / out_size)
        low = np.floor(source).astype(int)
        high = np.minimum(np.ceil(source).astype(int), in_size - 1)
        return low, high, source - low

    y0, y1, wy = taps(out_h, in_h)
    x0, x1, wx = taps(out_w, in_w)
    wx = wx[:, None]
    out = np.empty((out_h, out_w) + image.shape[2:], dtype=np.float64)
    for i in range(out_h):
        upper, lower = image[y0[i]], image[y1[i]]  # rows [W, C]
        top = upper[x0] + (upper[x1] - upper[x0]) * wx
        bottom = lower[x0] + (lower[x1] - lower[x0]) * wx
        out[i] = top + (bottom - top) * wy[i]
    return out
