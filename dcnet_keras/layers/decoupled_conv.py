"""``DecoupledConv2D``: every decoupled operator of the original code and the paper.

The math lives in :mod:`dcnet_keras.operators`; this layer owns the weights
(filter, radius, moving average of the mean patch norm) and the training /
inference switch.
"""

import keras
from keras import ops

from dcnet_keras import distribute, operators
from dcnet_keras.layers.conv_common import build_kernel, conv_output_shape
from dcnet_keras.layers.plain_conv import he_normal_untruncated
from dcnet_keras.moving_average import MovingAverage
from dcnet_keras.regularizers import FilterOrthogonality
from dcnet_keras.validation import (choice, fraction, int_pair,
                                    non_negative_float, padding as check_padding,
                                    positive_float, positive_int)


def check_weighted(weighted, magnitude):
    """``weighted`` as ``False`` or one of :data:`~dcnet_keras.operators.WEIGHTINGS`
    (``True``: ``"separate"``, the form of earlier versions); else a ValueError."""
    if weighted is None or weighted is False:
        return False
    if weighted is True:
        return "separate"
    if not (isinstance(weighted, str) and weighted in operators.WEIGHTINGS):
        raise ValueError(f"weighted: expected False, True or one of "
                         f"{', '.join(repr(w) for w in operators.WEIGHTINGS)}, received "
                         f"{weighted!r}")
    form = weighted
    if form == "joint" and magnitude == "sphere":
        raise ValueError("weighted: 'joint' (h(|w| |x|)) with magnitude 'sphere' is the "
                         "unweighted operator (h is constant); use 'linear' or 'separate', "
                         "received 'joint'")
    return form


@keras.saving.register_keras_serializable(package="dcnet_keras")
class DecoupledConv2D(keras.layers.Layer):
    """Decoupled convolution ``f(w, x) = h(|w|, |x|) * g(theta)`` (no bias).

    For a filter ``w`` ``[kh, kw, Cin, filters]`` and NHWC input ``x``:
    ``u = conv2d(x, w / |w|)``, the patch norm ``xn = |x|`` of every output
    position, the cosine ``c = u / xn``, and output ``h(xn) * g(c)``; see
    :mod:`dcnet_keras.operators` for every ``h`` and ``g``.  The five variants
    of the original code are ``magnitude`` x ``angular`` = ``tanh`` x ``cos``
    (TanhConv), ``ball`` x ``cos``, ``seg`` x ``cos``, ``linear`` x ``cos`` and
    ``linear`` x ``sqcos``, with ``alpha = 1`` and the defaults below.

    The saturating magnitudes (``ball``, ``tanh``, ``seg``) use a radius
    ``rho = (radius^2 + 1e-4) * m`` with ``radius`` a trainable weight per output
    channel (init 1, no weight decay) and ``m`` the mean of ``xn`` over batch,
    height and width: the batch value in training (gradients flow through it)
    and its moving average (decay 0.999, starting at 0, see
    :class:`~dcnet_keras.moving_average.MovingAverage`) at inference.

    Args:
      filters: number of output channels.
      kernel_size, strides: int or pair.
      padding: ``"same"`` (TensorFlow's, extra cell at the end) or ``"valid"``.
      magnitude: ``sphere``, ``ball``, ``tanh``, ``linear``, ``seg``, ``log``, ``mix``.
      angular: ``linear``, ``cos``, ``sigmoid``, ``sqcos``.
      alpha, beta: magnitude parameters (``beta``: ``seg`` slope past rho, default
        0.5 as the original; ``mix`` log weight, default 1).
      radius: ``"learned"`` (the original) or a positive number: a fixed radius
        ``R`` (``rho = R * m``, or ``rho = R`` with ``relative_radius=False``).
      relative_radius: whether ``rho`` is scaled by the mean patch norm ``m``.
      sigmoid_k: the ``k`` of the sigmoid angular function; at least
        ``pi / (2 ln 3.4e38)`` = 0.0177045 in float32 (below, its exponent overflows,
        see :func:`~dcnet_keras.operators.smallest_sigmoid_k`).
      weighted: a weighted operator of the paper's Table 1 (the filter norm
        ``|w| = sqrt(sum w^2 + 1e-4)`` enters the magnitude; such filters are not projected
        to unit norm): ``False`` (none, the original), ``"linear"`` ``|w| h(|x|)``,
        ``"joint"`` (Eq. 15) ``h(|w| |x|)``, e.g. ``alpha tanh(|w| |x| / rho)``, or
        ``"separate"`` (Eq. 16) ``h(|w|) h(|x|) / alpha``, e.g.
        ``alpha tanh(|w|/rho) tanh(|x|/rho)`` (``|w| h(|x|)`` for sphere); ``True`` means
        ``"separate"``.
      orthogonality: strength of the orthogonality term on the filter
        (``1e-5`` as the original; 0 for none).
      decay: decay of the moving average of ``m``.
      zero_debias: debias that moving average (not the original's behaviour).
      mean_epsilon: added to ``m`` (the ImageNet network uses ``1e-6``).
      patch_norm: ``"box"`` (channel sum of ``x^2`` then a k x k box filter, cheap)
        or ``"ones_filter"`` (the original's ``[k, k, Cin, 1]`` ones convolution:
        the same number, rounded exactly as the original on TensorFlow).
      kernel_initializer: default ``N(0, sqrt(2 / (k*k*Cin)))`` (CIFAR code).
      rematerialize: in training, recompute the response's elementwise intermediates
        in the backward pass instead of keeping them (``keras.remat``; the same
        numbers, less memory: see the README's "Speed").

    Every number must be finite in float32 (``nan``, ``inf`` and values beyond
    3.4e38 raise a ``ValueError`` naming the argument); positive ones must stay
    positive in float32.

    Weights: ``kernel`` (checkpoint ``<scope>/filter``), ``radius`` ``[filters]``
    (stored ``[1,1,1,filters]`` by the original), ``moving_patch_norm_mean``.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same", magnitude="tanh",
                 angular="cos", alpha=1.0, beta=None, radius="learned", relative_radius=True,
                 sigmoid_k=0.3, weighted=False, orthogonality=1e-5, decay=0.999,
                 zero_debias=False, mean_epsilon=0.0, patch_norm="box", kernel_initializer=None,
                 rematerialize=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int("filters", filters)
        self.kernel_size = int_pair("kernel_size", kernel_size)
        self.strides = int_pair("strides", strides)
        self.padding = check_padding("padding", padding)
        self.magnitude = choice("magnitude", magnitude, operators.MAGNITUDES)
        self.angular = choice("angular", angular, operators.ANGULARS)
        self.alpha = positive_float("alpha", alpha)
        if beta is None:
            beta = operators.DEFAULT_BETA.get(self.magnitude, 0.0)
        self.beta = non_negative_float("beta", beta)
        if isinstance(radius, str):
            radius = choice("radius", radius, ("learned",))
        else:
            radius = positive_float("radius", radius)
        self.radius = radius
        self.relative_radius = bool(relative_radius)
        self.sigmoid_k = positive_float("sigmoid_k", sigmoid_k)
        if self.angular == "sigmoid":
            self._check_sigmoid_k()
        self.weighted = check_weighted(weighted, self.magnitude)
        self.orthogonality = non_negative_float("orthogonality", orthogonality)
        self.decay = fraction("decay", decay)
        self.zero_debias = bool(zero_debias)
        self.mean_epsilon = non_negative_float("mean_epsilon", mean_epsilon)
        self.patch_norm = choice("patch_norm", patch_norm, operators.PATCH_NORMS)
        self.rematerialize = bool(rematerialize)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer if kernel_initializer is not None else he_normal_untruncated())

    def _check_sigmoid_k(self):
        """``k`` for which the sigmoid angular function is finite in the compute dtype:
        at least :func:`~dcnet_keras.operators.smallest_sigmoid_k` (its exponent
        overflows below), and a finite scale ``(1 + e^(-pi/2k)) / (1 - e^(-pi/2k))``
        (about ``4k/pi``; a division by zero beyond ``k`` = 2.8e16)."""
        k, dtype = self.sigmoid_k, self.compute_dtype
        smallest = operators.smallest_sigmoid_k(dtype)
        if k < smallest:
            raise ValueError(
                f"sigmoid_k: expected at least {smallest:.7g} (pi / (2 ln max_{dtype}); below "
                f"it exp(theta/k - pi/(2k)) overflows {dtype} and the sigmoid angular "
                f"function is nan), received {k!r}")
        try:
            scale = operators.sigmoid_angular_scale(k)
        except ZeroDivisionError:
            scale = float("inf")
        if not scale <= operators.largest_finite(dtype):
            raise ValueError(
                f"sigmoid_k: too large: the sigmoid angular scale (1 + e^(-pi/2k)) / "
                f"(1 - e^(-pi/2k)) is not finite in {dtype}, received {k!r} (as k grows the "
                f"function tends to angular='linear')")

    # What the chosen operator needs.
    @property
    def uses_radius(self):
        return self.magnitude in operators.MAGNITUDES_WITH_RADIUS

    @property
    def uses_patch_norm_mean(self):
        return self.uses_radius and self.relative_radius

    @property
    def uses_patch_norm(self):
        return not (self.magnitude == "linear" and self.angular == "cos"
                    and self.weighted != "joint")

    @property
    def projectable(self):
        """Whether the weight projection ``w <- w / |w|`` leaves the function unchanged."""
        return not self.weighted

    def build(self, input_shape):
        # kernel and radius are read in float32 whatever the compute dtype (autocast off):
        # the norms and rho are formed in float32 and only then cast (see ``call``).
        build_kernel(self, input_shape,
                     FilterOrthogonality(self.orthogonality) if self.orthogonality else None,
                     autocast=False)
        if self.uses_radius and self.radius == "learned":
            self.radius_weight = self.add_weight(name="radius", shape=(self.filters,),
                                                 initializer="ones", autocast=False)
        if self.uses_patch_norm_mean:
            self.moving_patch_norm_mean = MovingAverage(
                self, "moving_patch_norm_mean", (), self.decay, self.zero_debias)

    def _radius_parts(self, xn, training):
        """``(scale, r2)`` with ``rho = r2 * scale`` in the variable dtype; ``None`` if unused."""
        if not self.uses_radius:
            return None
        if self.radius == "learned":
            r2 = operators.squared_radius(self.radius_weight)
        else:
            r2 = ops.convert_to_tensor(self.radius, dtype=self.variable_dtype)
        if not self.uses_patch_norm_mean:
            return ops.ones((), dtype=self.variable_dtype), r2
        if training:
            m = distribute.global_mean(ops.mean(xn))
            self.moving_patch_norm_mean.update(m)
        else:
            m = ops.convert_to_tensor(self.moving_patch_norm_mean.value)
        if self.mean_epsilon:
            m = m + self.mean_epsilon
        return m, r2

    def call(self, inputs, training=False):
        """``h(|x|) g(theta)`` in the compute dtype; under a mixed policy (float16,
        bfloat16) the filter norm, the patch norm (whose sum of ``x^2`` over ``k*k*Cin``
        cells overflows float16 at 65504), ``m``, ``rho`` and its moving average are
        formed in the variable dtype (float32; float64 when ``floatx`` is) and cast to the
        compute dtype afterwards."""
        dtype = self.compute_dtype

        def compute(value):
            return None if value is None else ops.cast(value, dtype)

        kernel = ops.cast(self.kernel, self.variable_dtype)
        u = operators.conv2d(inputs, compute(operators.normalize_filter(kernel)), self.strides,
                             self.padding)
        xn = None
        if self.uses_patch_norm or self.uses_patch_norm_mean:
            xn = operators.patch_norm(ops.cast(inputs, self.variable_dtype), self.kernel_size,
                                      self.strides, self.padding, self.patch_norm)
        rho_parts = self._radius_parts(xn, training)
        weighting = {}
        if self.weighted == "joint":
            weighting["weight_norm"] = compute(operators.filter_norm(kernel))
        elif self.weighted:
            weighting["weight_factor"] = compute(operators.weight_magnitude_factor(
                self.magnitude, kernel, rho_parts, self.alpha, self.beta, self.weighted))
        if rho_parts is not None:
            rho_parts = tuple(compute(part) for part in rho_parts)
        return self._response(u, compute(xn), rho_parts, weighting, training)

    def _response(self, u, xn, rho_parts, weighting, training):
        """:func:`~dcnet_keras.operators.decoupled_response` (``weighting``: its
        ``weight_factor`` or ``weight_norm``); in training with ``rematerialize`` under
        ``keras.remat``: the backward pass keeps only the response's inputs (``u``, ``xn``,
        ``rho``, the weighting) and recomputes its elementwise intermediates (the same
        numbers: the same ops run again)."""
        has_xn, has_rho = xn is not None, rho_parts is not None
        names = sorted(weighting)

        def response(*tensors):
            tensors = list(tensors)
            u = tensors.pop(0)
            xn = tensors.pop(0) if has_xn else None
            rho = (tensors.pop(0), tensors.pop(0)) if has_rho else None
            return operators.decoupled_response(
                u, xn, self.magnitude, self.angular, rho, self.alpha, self.beta,
                self.sigmoid_k, **dict(zip(names, tensors)))

        tensors = [u] + ([xn] if has_xn else []) + (list(rho_parts) if has_rho else []) + [
            weighting[name] for name in names]
        if training and self.rematerialize and len(tensors) > 1:
            return keras.remat(response)(*tensors)
        return response(*tensors)

    def project_filter(self):
        """The original's weight projection: ``kernel <- kernel / sqrt(sum kernel^2 + 1e-4)``."""
        if not self.projectable:
            raise ValueError(f"{self.name}: a weighted operator's filter is not projected "
                             "(its norm is part of the function)")
        self.kernel.assign(operators.normalize_filter(self.kernel))

    def compute_output_shape(self, input_shape):
        return conv_output_shape(input_shape, self.filters, self.kernel_size, self.strides,
                                 self.padding)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
            padding=self.padding, magnitude=self.magnitude, angular=self.angular,
            alpha=self.alpha, beta=self.beta, radius=self.radius,
            relative_radius=self.relative_radius, sigmoid_k=self.sigmoid_k,
            weighted=self.weighted, orthogonality=self.orthogonality, decay=self.decay,
            zero_debias=self.zero_debias, mean_epsilon=self.mean_epsilon,
            patch_norm=self.patch_norm, rematerialize=self.rematerialize,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
