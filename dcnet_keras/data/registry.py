"""The dataset registry: one :class:`DatasetSpec` line per dataset.

A dataset is one module plus one entry here.  The module provides
``open_source(spec, source, data_dir, default_dir) -> DataSource`` (TensorFlow:
imported only when a dataset is opened), where a ``DataSource`` has

* ``description``: one line saying what was read (printed by the scripts);
* ``train_dataset(batch_size, seed, start, augmentation, shuffle_buffer)``: an
  endless ``tf.data.Dataset`` of ``(float32 images, int32 labels)`` global
  batches (``start``: the iteration a resumed run begins at);
* ``test_dataset(batch_size)``: one ordered pass over the test split;
* ``checkpoint_input``: whether a training checkpoint should hold the input
  pipeline's position (cheap for in-memory CIFAR, ~1 GB of JPEGs for ImageNet);
* ``explain(error)``: one line naming the file and record behind a
  ``tf.errors.OpError`` from the pipeline (or the error's first line).
"""

import dataclasses
import importlib
import os

from dcnet_keras.registry import Registry


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """``sources``: the formats ``--source`` takes (``auto`` picks from ``data_dir``);
    ``default_folder``: where the original scripts look, relative to the repository
    (``None``: no default); ``input_kind``: the networks it feeds (``cifar``:
    32x32 RGB in 0..255; ``imagenet``: 224x224 mean-subtracted)."""

    name: str
    num_classes: int
    input_kind: str
    module: str
    sources: tuple
    default_folder: str = None
    augmentations: tuple = ()
    description: str = ""

    def open(self, source="auto", data_dir=None, repo_root=None):
        """The :class:`DataSource` of ``source`` (checks the files before any long work)."""
        if source not in self.sources:
            from dcnet_keras.data.errors import DataError

            raise DataError(f"--source: dataset {self.name!r} has no source {source!r}; "
                            f"expected one of {', '.join(self.sources)}")
        default_dir = None
        if self.default_folder is not None and repo_root is not None:
            default_dir = os.path.join(repo_root, self.default_folder)
        module = importlib.import_module(self.module)
        return module.open_source(self, source, data_dir, default_dir)


DATASETS = Registry("dataset")
_CIFAR_SOURCES = ("auto", "binary", "pickle", "tfds", "synthetic")
_CIFAR_AUGMENTATIONS = ("pad_crop_flip", "flip", "none")

DATASETS.register("cifar10", DatasetSpec(
    "cifar10", 10, "cifar", "dcnet_keras.data.cifar", _CIFAR_SOURCES,
    default_folder="cifar-10-batches-bin", augmentations=_CIFAR_AUGMENTATIONS,
    description="CIFAR-10 (binary data_batch_1..5.bin + test_batch.bin, python pickles, tfds "
                "cifar10, or synthetic)"))
DATASETS.register("cifar100", DatasetSpec(
    "cifar100", 100, "cifar", "dcnet_keras.data.cifar", _CIFAR_SOURCES,
    default_folder="cifar-100-binary", augmentations=_CIFAR_AUGMENTATIONS,
    description="CIFAR-100 fine labels (binary train.bin + test.bin, python pickles, tfds "
                "cifar100, or synthetic)"))
DATASETS.register("imagenet", DatasetSpec(
    "imagenet", 1000, "imagenet", "dcnet_keras.data.imagenet", ("tfrecord", "tfds"),
    augmentations=("imagenet",),
    description="ImageNet ILSVRC-2012 (slim TFRecord shards train-*/validation-*, or tfds "
                "imagenet2012)"))


def get_dataset(name):
    return DATASETS.get(name)
