"""Networks and their registry: ``build_model(<preset or network>, ...)``.

Builders (each takes the operator and the norm as factories): ``build_cifar_resnet``
(``cifar_resnet32``), ``build_imagenet_resnet`` (``imagenet_resnet18``),
``build_cnn9`` (``cnn9``).
"""

from dcnet_keras.models.cifar_resnet import build_cifar_resnet
from dcnet_keras.models.cnn9 import build_cnn9
from dcnet_keras.models.imagenet_resnet import build_imagenet_resnet
from dcnet_keras.models.registry import (NETWORKS, ModelSpec, build_from_spec, build_model,
                                         get_network, register_network, resolve)

__all__ = ["build_cifar_resnet", "build_imagenet_resnet", "build_cnn9", "build_model",
           "build_from_spec", "get_network", "register_network", "resolve", "ModelSpec",
           "NETWORKS"]
