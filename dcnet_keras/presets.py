"""Presets: named models (network, operator, sizes, classes) with their data and recipe.

A preset is data, one :class:`Preset` line in :data:`PRESETS`, as keras-hub's
presets are: ``dcnet_keras.models.build_model(<preset>)`` builds it and
``python -m dcnet_keras.train --preset <preset>`` trains it.  The five CIFAR-100
variants of the original code and its ImageNet network are presets; so are
CNN-9's models of the paper's CIFAR-10 tables.
"""

import dataclasses

from dcnet_keras.registry import Registry


@dataclasses.dataclass(frozen=True)
class Preset:
    """``network`` built with ``variant`` (``batch_norm=None`` follows the variant name),
    ``options`` (the network's sizes), ``num_classes``; trained on ``dataset`` with
    ``recipe``; ``conv_options`` are further ``DecoupledConv2D`` arguments."""

    name: str
    network: str
    variant: str
    dataset: str
    recipe: str
    num_classes: int
    options: tuple = ()
    batch_norm: bool = None
    conv_options: tuple = ()
    description: str = ""


PRESETS = Registry("preset")


def register_preset(name, **fields):
    options = fields.pop("options", {})
    conv_options = fields.pop("conv_options", {})
    return PRESETS.register(name, Preset(name=name, options=tuple(sorted(options.items())),
                                         conv_options=tuple(sorted(conv_options.items())),
                                         **fields))


_CIFAR_RESNET = dict(widths=(96, 192, 384), units_per_stage=5)
for _variant in ("tanh_cos", "ball_cos", "seg_cos", "linear_cos", "linear_sqcos_wo_bn",
                 "baseline"):
    register_preset(_variant, network="cifar_resnet32", variant=_variant, dataset="cifar100",
                    recipe="dcnet_cifar", num_classes=100, options=_CIFAR_RESNET,
                    description=("dcnet_cifar100/" + _variant if _variant != "baseline" else
                                 "the CIFAR ResNet-32 with plain convolutions"))
register_preset("imagenet", network="imagenet_resnet18", variant="tanh_cos", dataset="imagenet",
                recipe="dcnet_imagenet", num_classes=1000,
                options=dict(widths=(128, 256, 512, 1024)),
                description="dcnet_imagenet: TanhConv + cosine modified ResNet-18")
for _variant in ("baseline", "sphere_cos", "ball_cos", "tanh_cos"):
    register_preset(f"cnn9_{_variant}", network="cnn9", variant=_variant, dataset="cifar10",
                    recipe="spherenet_cnn9", num_classes=10,
                    options=dict(widths=(128, 192, 256), relu=True),
                    description=f"CNN-9 {_variant} on CIFAR-10 (the paper's Tables 7-8 models)")


def get_preset(name):
    return PRESETS.get(name)

