"""Training recipes: optimiser, schedule, iterations, batch, augmentation, test interval.

A recipe is one named :class:`Recipe` in :data:`RECIPES` (in the spirit of
B-cos's per-experiment configurations and Model Garden's experiment
factories); the training CLIs take their defaults from it and every flag can
override a field.  Registered:

* ``dcnet_cifar``: the original ``dcnet_cifar100/*/train_resnet.py``: Adam
  1e-3 (epsilon 1e-8) x0.1 from iterations 20000, 30000, 37500; 42500
  iterations of batch 128; pad-4 symmetric crop + flip; a test every 500 on
  all test images at batch 100; a checkpoint every 10000; a log line every 100.
* ``dcnet_imagenet``: the original ``dcnet_imagenet/train_DCNet.py``: TF1
  momentum 0.9, lr 0.1 /10 from 200000, 375000, 550000; 700001 iterations of
  batch 40; a validation pass every 4000; a checkpoint every 100000; a log
  line every 500.
* ``spherenet_cnn9``: the authors' CNN-9 recipe (SphereNet
  ``train_spherenet.py``): Adam 1e-3 /10 from 34000 and 54000; ``i`` from 0 to
  64000 inclusive (64001 iterations) of batch 128; random horizontal flip only
  (``pad_crop_flip`` as an option); a test every 500 at batch 100; a
  checkpoint every 16000.

* ``experiments_tiny``: the ``tiny`` scale of the paper's experiment runners
  (:mod:`dcnet_keras.experiments`): Adam 3e-3 x0.1 from 50; 60 iterations of batch 32;
  flip; one test at the end.  A smoke scale (minutes for a whole table on 2 CPU cores),
  not a result.

A drop at iteration ``d`` applies to update ``d`` itself (the original changes
its rate at the start of that iteration), see :func:`dcnet_keras.schedules.step_schedule`.
"""

import dataclasses

from dcnet_keras.registry import Registry

#: augmentations of the training input (``dcnet_keras.data``).
AUGMENTATIONS = ("pad_crop_flip", "flip", "none", "imagenet")
#: formats of the train / test log lines (``dcnet_keras.training.run_logs``).
LOG_FORMATS = ("acc", "top1_top5")


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    optimizer: str            # "adam" (TF1 AdamOptimizer) or "tf1_momentum"
    base_lr: float
    drops: tuple              # iterations from which the rate is multiplied by drop_factor
    max_steps: int            # iterations (the original's loop runs i = 0 .. max_steps - 1)
    batch_size: int
    test_batch: int           # None: the training batch
    eval_every: int
    log_every: int
    checkpoint_every: int
    augmentation: str         # default training augmentation
    shuffle_buffer: int
    log_format: str
    drop_factor: float = 0.1
    description: str = ""

    def schedule(self, base_lr=None):
        """The learning-rate schedule (``base_lr`` overrides the recipe's)."""
        from dcnet_keras.schedules import step_schedule

        return step_schedule(self.base_lr if base_lr is None else base_lr, self.drops,
                             self.drop_factor)

    def make_optimizer(self, base_lr=None):
        """The optimiser with :meth:`schedule` as its learning rate."""
        from dcnet_keras.optimizers import OPTIMIZERS

        return OPTIMIZERS[self.optimizer](self.schedule(base_lr))


RECIPES = Registry("recipe")


def register_recipe(name, **fields):
    recipe = Recipe(name=name, **fields)
    if recipe.augmentation not in AUGMENTATIONS or recipe.log_format not in LOG_FORMATS:
        raise ValueError(f"recipe {name!r}: augmentation {recipe.augmentation!r} or log "
                         f"format {recipe.log_format!r} unknown")
    return RECIPES.register(name, recipe)


register_recipe(
    "dcnet_cifar", optimizer="adam", base_lr=1e-3, drops=(20000, 30000, 37500),
    max_steps=42500, batch_size=128, test_batch=100, eval_every=500, log_every=100,
    checkpoint_every=10000, augmentation="pad_crop_flip", shuffle_buffer=20000,
    log_format="acc", description="the original CIFAR-100 training (train_resnet.py)")
register_recipe(
    "dcnet_imagenet", optimizer="tf1_momentum", base_lr=0.1, drops=(200000, 375000, 550000),
    max_steps=700001, batch_size=40, test_batch=None, eval_every=4000, log_every=500,
    checkpoint_every=100000, augmentation="imagenet", shuffle_buffer=10000,
    log_format="top1_top5", description="the original ImageNet training (train_DCNet.py)")
register_recipe(
    "spherenet_cnn9", optimizer="adam", base_lr=1e-3, drops=(34000, 54000), max_steps=64001,
    batch_size=128, test_batch=100, eval_every=500, log_every=100, checkpoint_every=16000,
    augmentation="flip", shuffle_buffer=20000, log_format="acc",
    description="the authors' CNN-9 training (SphereNet train_spherenet.py)")

register_recipe(
    "experiments_tiny", optimizer="adam", base_lr=3e-3, drops=(50,), max_steps=60,
    batch_size=32, test_batch=100, eval_every=60, log_every=20, checkpoint_every=60,
    augmentation="flip", shuffle_buffer=2000, log_format="acc",
    description="the experiment runners' tiny scale: a few-minute smoke run of a table")


def get_recipe(name):
    return RECIPES.get(name)
