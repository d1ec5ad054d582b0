"""The network registry and :func:`build_model`, the one place that turns names and
options into a model.

Each network is one module (a builder taking the operator and the norm as
factories) plus one :func:`register_network` entry here, in the manner of Model
Garden's registered backbone builders and timm's ``register_model``.  A preset
(:mod:`dcnet_keras.presets`) names a network with its operator, sizes and
classes; ``build_model`` takes either::

    build_model("tanh_cos")                                   # a preset
    build_model("cnn9", variant="ball_cos", num_classes=10, batch_norm=False)
    build_model("cnn9", include_top=False, pooling="avg")     # features [N, 256]

``include_top``, ``pooling`` and ``input_shape`` (:data:`HEAD_ARGUMENTS`, the
``keras.applications`` arguments) choose how a model is built, not which weights
it holds: they are keyword arguments of :func:`build_model` and
:func:`build_from_spec`, never network options, so a :class:`ModelSpec` (and
``model_spec.json``) does not hold them.
"""

import dataclasses
import inspect
from typing import Callable

from dcnet_keras import presets as preset_registry
from dcnet_keras.models.cifar_resnet import (CIFAR_ORTHOGONALITY, CIFAR_WEIGHT_DECAY,
                                             build_cifar_resnet)
from dcnet_keras.models.cnn9 import CNN9_ORTHOGONALITY, CNN9_WEIGHT_DECAY, build_cnn9
from dcnet_keras.models.imagenet_resnet import (IMAGENET_MEAN_EPSILON, IMAGENET_ORTHOGONALITY,
                                                IMAGENET_WEIGHT_DECAY, build_imagenet_resnet)
from dcnet_keras.models.operator_factory import check_widths, conv_factory, norm_factory
from dcnet_keras.registry import Registry
from dcnet_keras.variants import parse_variant

#: input kinds: what the model's input is (and so which serving signatures it gets).
INPUT_KINDS = {"cifar": (32, 32, 3), "imagenet": (224, 224, 3)}
#: builder arguments that are not network options: the ``keras.applications`` ones, with
#: their defaults (the network with its top, at its own input shape).
HEAD_ARGUMENTS = {"include_top": True, "pooling": None, "input_shape": None}


@dataclasses.dataclass(frozen=True)
class Network:
    """A registered network: its builder and what the builder's caller must know.

    ``options``: the builder's size options beyond ``num_classes`` (e.g.
    ``widths``, ``units_per_stage``, ``relu``), with their defaults.
    ``weight_decay`` / ``orthogonality`` / ``mean_epsilon``: the strengths the
    original code uses in this network.  ``default_recipe`` / ``default_dataset``:
    the training recipe and data of the code the network comes from.
    """

    name: str
    builder: Callable
    input_kind: str
    num_classes: int
    weight_decay: float
    orthogonality: float
    default_recipe: str
    default_dataset: str
    description: str
    mean_epsilon: float = 0.0
    options: dict = dataclasses.field(default_factory=dict)

    @property
    def input_shape(self):
        return INPUT_KINDS[self.input_kind]


NETWORKS = Registry("network")


def register_network(name, builder, **fields):
    """Register ``builder(conv, norm, num_classes, **options[, weight_decay][, include_top,
    pooling, input_shape], name)``; its other keyword arguments (with their defaults) are
    the network's options (:data:`HEAD_ARGUMENTS` are not options)."""
    parameters = inspect.signature(builder).parameters
    options = {k: p.default for k, p in parameters.items()
               if k not in ("conv", "norm", "num_classes", "weight_decay", "name")
               and k not in HEAD_ARGUMENTS}
    return NETWORKS.register(name, Network(name=name, builder=builder, options=options,
                                           **fields))


register_network(
    "cifar_resnet32", build_cifar_resnet, input_kind="cifar", num_classes=100,
    weight_decay=CIFAR_WEIGHT_DECAY, orthogonality=CIFAR_ORTHOGONALITY,
    default_recipe="dcnet_cifar", default_dataset="cifar100",
    description="the original CIFAR 32-layer ResNet (class VGG of dcnet_cifar100)")
register_network(
    "imagenet_resnet18", build_imagenet_resnet, input_kind="imagenet", num_classes=1000,
    weight_decay=IMAGENET_WEIGHT_DECAY, orthogonality=IMAGENET_ORTHOGONALITY,
    mean_epsilon=IMAGENET_MEAN_EPSILON, default_recipe="dcnet_imagenet", default_dataset="imagenet",
    description="the original ImageNet 'modified ResNet-18' with PReLU (DCNet_modified_ResNet)")
register_network(
    "cnn9", build_cnn9, input_kind="cifar", num_classes=10, weight_decay=CNN9_WEIGHT_DECAY,
    orthogonality=CNN9_ORTHOGONALITY, default_recipe="spherenet_cnn9", default_dataset="cifar10",
    description="CNN-9 of the paper's Tables 2-3 (the authors' SphereNet network)")


def get_network(name):
    return NETWORKS.get(name)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything that decides a model's graph and weights' shapes (what a run stores)."""

    network: str
    variant: str = "tanh_cos"
    num_classes: int = None
    batch_norm: bool = None
    options: dict = dataclasses.field(default_factory=dict)
    conv_options: dict = dataclasses.field(default_factory=dict)
    zero_debias: bool = False
    patch_norm: str = "box"

    def to_dict(self):
        return dataclasses.asdict(self)


def lookup(name):
    """``(preset or None, network)`` that ``name`` (a preset or a network) means."""
    if name in preset_registry.PRESETS:
        preset = preset_registry.PRESETS.get(name)
        return preset, get_network(preset.network)
    if name in NETWORKS:
        return None, get_network(name)
    raise ValueError(f"network: unknown network or preset {name!r}; networks: "
                     f"{', '.join(NETWORKS.names())}; presets: "
                     f"{', '.join(preset_registry.PRESETS.names())}")


def resolve(name, variant=None, num_classes=None, batch_norm=None, zero_debias=False,
            patch_norm="box", conv_options=None, **options):
    """The :class:`ModelSpec` of a preset or a network ``name`` with overrides: every
    option of the network explicit.

    Overrides that are ``None`` keep the preset's (or the network's) value.
    ``options`` are the network's own (``widths``, ``units_per_stage``,
    ``relu``, ...); one it does not have is a ValueError naming it.
    """
    preset, network = lookup(name)
    if preset is not None:
        base = dict(network.options, **dict(preset.options))
        variant = variant if variant is not None else preset.variant
        num_classes = num_classes if num_classes is not None else preset.num_classes
        batch_norm = batch_norm if batch_norm is not None else preset.batch_norm
        merged_conv = dict(preset.conv_options)
    else:
        base = dict(network.options)
        variant = variant if variant is not None else "tanh_cos"
        merged_conv = {}
    for key, value in options.items():
        if key not in network.options:
            raise ValueError(f"{key}: network {network.name!r} has no such option (its "
                             f"options: {', '.join(network.options) or 'none'}), received "
                             f"{value!r}")
        if value is not None:
            base[key] = tuple(value) if isinstance(value, list) else value
    if "widths" in base:  # checked now, before any data is read or model built
        base["widths"] = check_widths(base["widths"], len(network.options["widths"]))
    merged_conv.update(conv_options or {})
    parsed = parse_variant(variant, batch_norm)
    return ModelSpec(network=network.name, variant=variant,
                     num_classes=network.num_classes if num_classes is None else num_classes,
                     batch_norm=parsed.batch_norm, options=base, conv_options=merged_conv,
                     zero_debias=bool(zero_debias), patch_norm=patch_norm)


#: options that only size a network; a run of a preset at other sizes keeps its name.
SIZE_OPTIONS = ("widths", "units_per_stage", "fc_width")


def preset_of(spec, dataset):
    """The name of the preset that ``spec`` trained on ``dataset`` is (at any sizes), or
    ``None``."""
    sizes = {k: v for k, v in spec.options.items() if k in SIZE_OPTIONS}
    for name, preset in preset_registry.PRESETS.items():
        if preset.dataset != dataset or preset.network != spec.network:
            continue
        candidate = resolve(name, zero_debias=spec.zero_debias, patch_norm=spec.patch_norm,
                            num_classes=spec.num_classes, **sizes)
        if candidate == spec:
            return name
    return None


def head_arguments(network, include_top=True, pooling=None, input_shape=None):
    """The :data:`HEAD_ARGUMENTS` to pass to ``network``'s builder: those that differ from
    their defaults (a builder without them is then refused: a ValueError naming the
    argument); the builder checks their values."""
    given = dict(include_top=include_top, pooling=pooling, input_shape=input_shape)
    parameters = inspect.signature(network.builder).parameters
    chosen = {}
    for key, value in given.items():
        if value is HEAD_ARGUMENTS[key]:
            continue
        if key not in parameters:
            raise ValueError(f"{key}: network {network.name!r} takes no {key} argument, "
                             f"received {value!r}")
        chosen[key] = value
    return chosen


def build_from_spec(spec, name=None, include_top=True, pooling=None, input_shape=None):
    """The Keras model of a :class:`ModelSpec` (or of its ``to_dict()``); ``include_top``,
    ``pooling``, ``input_shape`` as in ``keras.applications`` (see the network's builder:
    ``include_top=False`` ends at the last feature map, ``pooling`` ``"avg"``/``"max"``
    pools it to ``[N, C]``)."""
    if isinstance(spec, dict):
        spec = ModelSpec(**spec)
    network = get_network(spec.network)
    parsed = parse_variant(spec.variant, spec.batch_norm)
    conv = conv_factory(parsed, network.weight_decay, network.orthogonality, spec.zero_debias,
                        spec.patch_norm, network.mean_epsilon, spec.conv_options)
    norm = norm_factory(parsed.batch_norm, network.weight_decay, spec.zero_debias)
    bn_suffix = "" if parsed.batch_norm or spec.variant.endswith("_wo_bn") else "_wo_bn"
    model_name = name or f"{network.name}_{spec.variant}{bn_suffix}"
    kwargs = dict(spec.options, num_classes=spec.num_classes, name=model_name)
    if "weight_decay" in inspect.signature(network.builder).parameters:
        kwargs["weight_decay"] = network.weight_decay  # the builder's own plain layers
    kwargs.update(head_arguments(network, include_top, pooling, input_shape))
    return network.builder(conv, norm, **kwargs)


def build_model(name, variant=None, num_classes=None, batch_norm=None, zero_debias=False,
                patch_norm="box", conv_options=None, model_name=None, include_top=True,
                pooling=None, input_shape=None, **options):
    """A Keras model of the preset or network ``name``.

    Args:
      name: a preset (``tanh_cos``, ``imagenet``, ``cnn9_tanh_cos``, ...) or a
        network (``cifar_resnet32``, ``imagenet_resnet18``, ``cnn9``); see
        ``python -m dcnet_keras.list``.
      variant: the operator, ``<magnitude>_<angular>`` (optionally ``_wo_bn``)
        or ``baseline`` (plain convolutions with weight decay); default the
        preset's, or ``tanh_cos`` for a network.
      num_classes: logits per image (default the preset's or the network's).
      batch_norm: ``False`` drops every batch norm; ``None`` follows the variant.
      zero_debias: zero-debias the moving averages (the original does not).
      patch_norm: ``"box"`` or ``"ones_filter"`` (see ``DecoupledConv2D``).
      conv_options: further ``DecoupledConv2D`` arguments (``alpha``, ``radius``,
        ``sigmoid_k``, ``weighted``, ...).
      model_name: the Keras model's name.
      include_top: ``False`` drops the classifier (and its pooling): the model ends at
        the last feature map ``[N, h, w, C]``.
      pooling: with ``include_top=False``: ``None`` (the feature map), ``"avg"`` or
        ``"max"`` (global pooling to ``[N, C]``).
      input_shape: ``(height, width, channels)``, default the network's; other sizes
        need ``include_top=False``.
      **options: the network's own (``widths``, ``units_per_stage``, ``relu``, ...).

    The logits (with the top) are float32 under a mixed dtype policy (float16, bfloat16).
    """
    spec = resolve(name, variant, num_classes, batch_norm, zero_debias, patch_norm,
                   conv_options, **options)
    return build_from_spec(spec, model_name, include_top, pooling, input_shape)
