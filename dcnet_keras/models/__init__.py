"""Model builders: the original CIFAR-100 and ImageNet networks."""

from dcnet_keras.models.cifar_resnet import build_cifar_resnet
from dcnet_keras.models.imagenet_resnet import build_imagenet_resnet

__all__ = ["build_cifar_resnet", "build_imagenet_resnet"]
