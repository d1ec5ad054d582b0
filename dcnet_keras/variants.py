"""Names of the CIFAR network variants: the original five, any pair, and ``baseline``."""

from dataclasses import dataclass

from dcnet_keras import operators

#: the five folders of the original ``dcnet_cifar100``.
ORIGINAL_VARIANTS = ("tanh_cos", "ball_cos", "seg_cos", "linear_cos", "linear_sqcos_wo_bn")
BASELINE = "baseline"
WITHOUT_BN_SUFFIX = "_wo_bn"


@dataclass(frozen=True)
class Variant:
    """What a variant name means.

    ``magnitude``/``angular`` are ``None`` for ``baseline`` (plain convolutions).
    """

    name: str
    magnitude: str = None
    angular: str = None
    batch_norm: bool = True

    @property
    def decoupled(self):
        return self.magnitude is not None


def known_variant_names():
    pairs = [f"{m}_{a}" for m in operators.MAGNITUDES for a in operators.ANGULARS]
    return (BASELINE,) + tuple(pairs)


def parse_variant(name, batch_norm=None):
    """``"<magnitude>_<angular>"`` (optionally ``"_wo_bn"``) or ``"baseline"``.

    ``batch_norm=False`` drops batch norm everywhere, as ``linear_sqcos_wo_bn``
    does; ``None`` keeps what the name says (batch norm unless ``_wo_bn``).
    """
    if not isinstance(name, str):
        raise ValueError(f"variant: expected a name such as 'tanh_cos', received {name!r}")
    stem, with_bn = name, True
    if stem.endswith(WITHOUT_BN_SUFFIX):
        stem, with_bn = stem[: -len(WITHOUT_BN_SUFFIX)], False
    if batch_norm is not None:
        with_bn = bool(batch_norm)
    if stem == BASELINE:
        return Variant(name, None, None, with_bn)
    magnitude, _, angular = stem.partition("_")
    if magnitude not in operators.MAGNITUDES or angular not in operators.ANGULARS:
        raise ValueError(
            f"variant: unknown variant {name!r}; expected 'baseline' or "
            f"'<magnitude>_<angular>' (optionally ending in '{WITHOUT_BN_SUFFIX}') with "
            f"magnitude in {operators.MAGNITUDES} and angular in {operators.ANGULARS}, "
            f"e.g. one of the originals {ORIGINAL_VARIANTS}")
    return Variant(name, magnitude, angular, with_bn)
