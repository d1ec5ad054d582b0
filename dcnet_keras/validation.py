"""Argument checks shared by the layers and builders: clear ``ValueError``s.

The number checks take "finite" in float32, the dtype of every weight and of
the computation: a value above ``FLOAT32_MAX`` (3.4028235e38) would be ``inf``
once cast, so it is refused like ``inf`` and ``nan``; a "positive" value must
stay positive in float32 (above ``2**-150``; anything smaller rounds to 0).
"""

import math
import numbers

#: the largest finite float32, ``(2 - 2**-23) * 2**127``.
FLOAT32_MAX = float.fromhex("0x1.fffffep127")
#: the smallest positive float32 (a subnormal), ``2**-149``.
FLOAT32_SMALLEST = 2.0 ** -149


def choice(argument, value, allowed):
    """``value`` if it is one of ``allowed``, else a ValueError naming both."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"{argument}: expected one of {', '.join(repr(a) for a in allowed)}, "
            f"received {value!r}")
    return value


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(argument, value):
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{argument}: expected a positive integer, received {value!r}")
    return int(value)


def finite_float(argument, value):
    """``float(value)`` if it is a number finite in float32 (``|x| <= FLOAT32_MAX``),
    else a ValueError naming the argument and the value (``nan``, ``inf``, ``1e39``,
    a string, a bool)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if isinstance(value, bool) or number is None or not abs(number) <= FLOAT32_MAX:
        raise ValueError(f"{argument}: expected a finite number (at most {FLOAT32_MAX:.8g} "
                         f"in magnitude, the float32 limit), received {value!r}")
    return number


def positive_float(argument, value):
    """A finite number that stays positive in float32 (``> 2**-150``, rounding to at
    least ``2**-149``)."""
    try:
        number = finite_float(argument, value)
    except ValueError:
        number = math.nan
    if not number > FLOAT32_SMALLEST / 2:
        raise ValueError(f"{argument}: expected a finite positive number (float32: between "
                         f"{FLOAT32_SMALLEST:.3g} and {FLOAT32_MAX:.8g}), received {value!r}")
    return number


def non_negative_float(argument, value):
    """A finite number ``>= 0`` (at most ``FLOAT32_MAX``)."""
    try:
        number = finite_float(argument, value)
    except ValueError:
        number = math.nan
    if not number >= 0:
        raise ValueError(f"{argument}: expected a finite number >= 0 (at most "
                         f"{FLOAT32_MAX:.8g}, the float32 limit), received {value!r}")
    return number


#: the range of the networks' 0..255 RGB input, in which attack strengths are given.
GREY_LEVELS = (0.0, 255.0)


def grey_levels(argument, value):
    """``value`` as a float in ``0..255`` (a strength in grey levels of the 0..255 input),
    else a ValueError naming ``argument`` and the value."""
    low, high = GREY_LEVELS
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            low <= value <= high):
        raise ValueError(f"{argument}: expected a number of grey levels in 0..255, "
                         f"received {value!r}")
    return float(value)


def fraction(argument, value):
    """A number in [0, 1)."""
    number = non_negative_float(argument, value)
    if number >= 1:
        raise ValueError(f"{argument}: expected a number in [0, 1), received {value!r}")
    return number


def int_pair(argument, value):
    """An int or a pair of ints, each positive, as a tuple of two."""
    try:
        pair = (value, value) if _is_int(value) else tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) and v > 0 for v in pair):
        raise ValueError(
            f"{argument}: expected a positive integer or a pair of them, received {value!r}")
    return tuple(int(v) for v in pair)


def padding(argument, value):
    lowered = value.lower() if isinstance(value, str) else value
    return choice(argument, lowered, ("same", "valid"))


def image_input_shape(layer_name, input_shape, channels=None):
    """Check an NHWC input shape ``[batch, height, width, channels]``; returns the
    channel count.

    The layers are channels-last only: under ``keras.config.image_data_format() ==
    "channels_first"`` this raises (an NCHW ``(3, 32, 32)`` would otherwise build as
    height 3, width 32, 32 channels).
    """
    import keras

    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            f"{layer_name}: the DCNet layers are channels-last only (NHWC), but "
            f"keras.config.image_data_format() is {keras.config.image_data_format()!r}; "
            "call keras.config.set_image_data_format('channels_last') and pass "
            "[batch, height, width, channels] inputs, received shape "
            f"{tuple(input_shape) if input_shape is not None else None}")
    if input_shape is None or len(input_shape) != 4:
        raise ValueError(
            f"{layer_name}: expected a 4-D input [batch, height, width, channels], "
            f"received shape {tuple(input_shape) if input_shape is not None else None}")
    if input_shape[-1] is None:
        raise ValueError(f"{layer_name}: the channel dimension of the input must be known, "
                         f"received shape {tuple(input_shape)}")
    if channels is not None and input_shape[-1] != channels:
        raise ValueError(
            f"{layer_name}: expected {channels} input channels, received shape "
            f"{tuple(input_shape)}")
    return int(input_shape[-1])
