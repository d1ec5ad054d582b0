"""The scales an experiment runner trains at: ``tiny`` (CI, minutes) and ``full`` (the paper's).

A scale is data, one :class:`Scale` in :data:`SCALES`: the recipe and the network sizes
per network, whether the moving averages are zero-debiased, the synthetic data's size
when no data is given, and how many test images the attacks use.

* ``tiny``: recipe ``experiments_tiny`` (60 iterations of batch 32); CNN-9 widths
  (8, 8, 8) with fc6 8 wide; the CIFAR ResNet at widths (4, 8, 16), one unit per stage;
  zero-debiased moving averages (the original's start at 0 and mean little before ~2000
  iterations); without ``--data_dir`` the synthetic set (2000 train / 500 test images),
  which is NOT CIFAR; attacks on the first 200 test images.
* ``full``: the paper's scale: each network's own recipe (``spherenet_cnn9`` for CNN-9,
  ``dcnet_cifar`` for the CIFAR ResNet-32 of Table 1), its full sizes, the original's
  moving averages, the real data (``--data_dir``, else tfds), every test image.
"""

import dataclasses

from dcnet_keras.registry import Registry


@dataclasses.dataclass(frozen=True)
class Scale:
    """``recipes``/``sizes``: per network name, the recipe and the size options
    (``()``: the network's, or for the CIFAR ResNet the original presets', sizes);
    ``synthetic_sizes``: ``(train, test)`` images of the synthetic set used without data
    (``None``: real data only); ``attack_images``: test images the attacks use (``None``:
    all)."""

    name: str
    recipes: tuple
    sizes: tuple
    zero_debias: bool
    synthetic_sizes: tuple
    attack_images: int
    description: str

    def recipe(self, network):
        return dict(self.recipes)[network]

    def size_options(self, network):
        return dict(dict(self.sizes).get(network, ()))


SCALES = Registry("scale")
SCALES.register("tiny", Scale(
    "tiny", recipes=(("cnn9", "experiments_tiny"), ("cifar_resnet32", "experiments_tiny")),
    sizes=(("cnn9", (("widths", (8, 8, 8)), ("fc_width", 8))),
           ("cifar_resnet32", (("widths", (4, 8, 16)), ("units_per_stage", 1)))),
    zero_debias=True, synthetic_sizes=(2000, 500), attack_images=200,
    description="smoke scale: small widths, 60 iterations, synthetic data unless given"))
SCALES.register("full", Scale(
    "full", recipes=(("cnn9", "spherenet_cnn9"), ("cifar_resnet32", "dcnet_cifar")),
    sizes=(("cifar_resnet32", (("widths", (96, 192, 384)), ("units_per_stage", 5))),),
    zero_debias=False, synthetic_sizes=None, attack_images=None,
    description="the paper's scale: the networks' recipes and sizes, the real data"))
