"""The command-line flags that choose a model, shared by train, export, evaluate.

``add_model_flags(parser)`` adds ``--preset --network --variant --widths
--units_per_stage --num_classes --no_bn --no_relu --weighted``; :func:`model_spec` turns
them into a :class:`~dcnet_keras.models.registry.ModelSpec` through the
network registry (the only place that turns flags into a model).
"""

import argparse
import dataclasses

from dcnet_keras.operators import WEIGHTINGS


def positive(kind):
    """An argparse type accepting only finite positive numbers of ``kind``."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, received {text!r}")
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
        return value
    return parse


def add_model_flags(parser, choose_network=True):
    """Model flags; ``choose_network=False`` leaves out ``--preset --network --variant``
    (the original scripts, whose file names fix the model)."""
    group = parser.add_argument_group("model (python -m dcnet_keras.list shows the choices)")
    add = group.add_argument
    if choose_network:
        add("--preset", default=None,
            help="a preset: network, operator, sizes, classes, dataset and recipe")
        add("--network", default=None, help="a registered network (cifar_resnet32, "
                                             "imagenet_resnet18, cnn9)")
        add("--variant", default=None,
            help="operator <magnitude>_<angular> (e.g. tanh_cos, log_sqcos), optionally "
                 "_wo_bn, or baseline (default: the preset's, else tanh_cos)")
    add("--widths", type=positive(int), nargs="+", default=None,
        help="stage widths (default the preset's or network's; small values for quick runs)")
    add("--units_per_stage", type=positive(int), default=None,
        help="residual units per stage (cifar_resnet32)")
    add("--num_classes", type=positive(int), default=None,
        help="logits per image (default: training and evaluate, the dataset's; export, the "
             "preset's or network's)")
    add("--no_bn", action="store_true", help="build without batch norm (CNN-9 Table 2)")
    add("--no_relu", action="store_true", help="build without ReLU after the stage convs "
                                               "(cnn9, Table 3)")
    add("--weighted", default=None, choices=("none",) + WEIGHTINGS,
        help="a weighted operator (Table 1): linear |w| h(|x|), joint h(|w| |x|) (Eq. 15), "
             "separate h(|w|) h(|x|) / alpha (Eq. 16); decoupled variants only")
    return parser


#: the flags that describe a model.
MODEL_FLAGS = ("preset", "network", "variant", "widths", "units_per_stage", "num_classes",
               "no_bn", "no_relu", "weighted")


def names_a_model(args):
    """Whether any model flag was given."""
    return any(getattr(args, key, None) for key in MODEL_FLAGS)


def _named(args, default):
    """``(preset or network name, variant)`` the flags name.

    ``--preset`` or ``--network`` name it (they must agree); without either, a
    ``--variant`` that is a preset (``tanh_cos``, ``imagenet``, ``cnn9_ball_cos``)
    means that preset and any other ``--variant`` (``log_sqcos``) the CIFAR
    ResNet-32 with it, as the commands documented before the registry read it;
    no model named at all gives ``default``.
    """
    from dcnet_keras.presets import PRESETS, get_preset

    preset = getattr(args, "preset", None)
    network = getattr(args, "network", None)
    variant = getattr(args, "variant", None)
    if preset and network and get_preset(preset).network != network:
        raise ValueError(f"--network: preset {preset!r} is a "
                         f"{get_preset(preset).network!r} model, received {network!r}")
    if preset or network:
        return preset or network, variant
    if variant is None:
        return default, None
    if variant in PRESETS:
        return variant, None
    return "cifar_resnet32", variant


def model_name(args, default=None):
    """The preset or network the flags name (see :func:`_named`), else ``default``."""
    return _named(args, default)[0]


def model_dataset(args, default=None):
    """The dataset the flags' model is trained on: its preset's, or its network's default."""
    from dcnet_keras.models.registry import lookup

    name = model_name(args)
    if name is None:
        return default
    preset, network = lookup(name)
    return preset.dataset if preset else network.default_dataset


def model_spec(args, default=None, num_classes=None, zero_debias=False):
    """The :class:`ModelSpec` the flags in ``args`` describe (``default``: the preset or
    network when the flags name none; ``num_classes``: when ``--num_classes`` is absent)."""
    from dcnet_keras.models.registry import resolve

    name, variant = _named(args, default)
    if name is None:
        raise ValueError("--preset / --network: name a preset or a network "
                         "(python -m dcnet_keras.list shows them)")
    options = {}
    if args.widths is not None:
        options["widths"] = tuple(args.widths)
    if args.units_per_stage is not None:
        options["units_per_stage"] = args.units_per_stage
    if args.no_relu:
        options["relu"] = False
    spec = resolve(name, variant=variant,
                   num_classes=num_classes if args.num_classes is None else args.num_classes,
                   batch_norm=False if args.no_bn else None, zero_debias=zero_debias,
                   **options)
    weighted = getattr(args, "weighted", None)
    if weighted in (None, "none"):
        return spec
    from dcnet_keras.layers.decoupled_conv import check_weighted
    from dcnet_keras.variants import parse_variant

    variant = parse_variant(spec.variant)
    if not variant.decoupled:
        raise ValueError(f"--weighted: applies to decoupled operators; variant "
                         f"{spec.variant!r} uses plain convolutions, received {weighted!r}")
    try:  # the layer's own rule (joint x sphere is refused), checked before any data is read
        check_weighted(weighted, variant.magnitude)
    except ValueError as error:
        raise ValueError(f"--{error}") from None
    return dataclasses.replace(spec, conv_options=dict(spec.conv_options, weighted=weighted))
