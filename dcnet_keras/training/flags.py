"""Command-line flags every training CLI shares: the recipe's numbers and the run's.

Recipe flags default to ``None`` (= the recipe's value) in the generic CLI and
to the recipe's numbers in the original scripts, whose ``--help`` shows them.
"""

import argparse

from dcnet_keras.model_flags import positive
from dcnet_keras.training.config import (ADVERSARIAL_TRAINING, DEFAULT_ADVERSARIAL_EPSILON,
                                         JIT_COMPILE, MIXED_PRECISION_POLICIES)
from dcnet_keras.training.distribution import STRATEGIES
from dcnet_keras.validation import grey_levels

STRATEGY_HELP = ("auto: MirroredStrategy over all GPUs if several, else one device; mirrored: "
                 "over all GPUs (or logical CPUs); multiworker: MultiWorkerMirroredStrategy "
                 "configured by TF_CONFIG")
#: recipe fields a flag of the same name overrides.
RECIPE_FLAGS = ("base_lr", "batch_size", "max_steps", "eval_every", "log_every",
                "checkpoint_every")


def add_recipe_flags(parser, recipe=None):
    """``--base_lr --batch_size --max_steps --eval_every --log_every --checkpoint_every``;
    defaults from ``recipe``, or ``None`` (the chosen recipe's) when it is ``None``."""
    def default(field):
        return None if recipe is None else getattr(recipe, field)

    drops = ("the recipe's iterations" if recipe is None else
             "iterations " + ", ".join(str(d) for d in recipe.drops))
    group = parser.add_argument_group("recipe (defaults: the recipe's)")
    add = group.add_argument
    add("--base_lr", type=positive(float), default=default("base_lr"),
        help=f"initial learning rate (x{recipe.drop_factor if recipe else 0.1} from {drops})")
    add("--batch_size", type=positive(int), default=default("batch_size"),
        help="global batch, split over the replicas")
    add("--max_steps", type=positive(int), default=default("max_steps"),
        help="training iterations")
    add("--eval_every", type=positive(int), default=default("eval_every"),
        help="test/validation pass every this many iterations")
    add("--log_every", type=positive(int), default=default("log_every"),
        help="training log line every this many iterations")
    add("--checkpoint_every", type=positive(int), default=default("checkpoint_every"),
        help="checkpoint every this many iterations (and at the end)")
    return group


def add_run_flags(parser, name):
    """Folders, strategy, seed, resume, output, precision and compilation flags; ``name`` is
    the default folder name."""
    group = parser.add_argument_group("run")
    add = group.add_argument
    add("--model_dir", default=None,
        help=f"checkpoints and exported models (default <repo>/model/{name})")
    add("--log_dir", default=None,
        help=f"log files and TensorBoard (default <repo>/log/{name})")
    add("--strategy", default="auto", choices=STRATEGIES, help=STRATEGY_HELP)
    add("--seed", type=int, default=0, help="initialisation and data order")
    add("--deterministic", action="store_true",
        help="deterministic ops: a resumed run ends with exactly the weights of an "
             "uninterrupted one (slower)")
    add("--resume", action=argparse.BooleanOptionalAction, default=True,
        help="continue from the newest checkpoint in --model_dir")
    add("--debias_moving_averages", action="store_true",
        help="zero-debias the moving averages (the original does not: its inference-mode "
             "accuracy means little before ~2000 iterations)")
    add("--keep_checkpoints", type=positive(int), default=None,
        help="keep only the newest N checkpoints (default: every one, as the original)")
    add("--no_export", action="store_true", help="skip the final .keras file and SavedModel")
    add("--progress", action=argparse.BooleanOptionalAction, default=True,
        help="show a progress bar below the log lines when stdout is a terminal (never on a "
             "file or a pipe, which get the log lines only)")
    add("--check_every", type=positive(int), default=10,
        help="read the step's losses back from the device and stop on a non-finite one every "
             "this many iterations (also before every log line, summary, test, checkpoint "
             "and export); the error names the first bad iteration")
    add("--summary_every", type=positive(int), default=10,
        help="TensorBoard training scalars every this many iterations (from iteration 0), "
             "independent of --log_every")
    add("--mixed_precision", default="off", choices=tuple(MIXED_PRECISION_POLICIES),
        help="float16: Keras policy mixed_float16 with loss scaling; bfloat16: "
             "mixed_bfloat16 (variables stay float32); a resume must keep it")
    add("--jit_compile", default="auto", choices=JIT_COMPILE,
        help="compile the training step and the test forward with XLA (auto: on when "
             "TensorFlow sees a GPU)")
    add("--projection", action=argparse.BooleanOptionalAction, default=True,
        help="the original's weight projection of the decoupled filters after updates 101, "
             "201, ... (--no-projection: the paper's 'standard gradients', Table 1)")
    add("--weighted_gradients", action="store_true",
        help="multiply every decoupled filter's gradient by its norm |w| before the update "
             "(the paper's 'weighted gradients', Table 1; our reading)")
    add("--adversarial", default="none", choices=ADVERSARIAL_TRAINING,
        help="adversarial training: fgsm replaces the last half of every batch by FGSM "
             "images crafted on the model at that step (Tables 7-8)")
    add("--adversarial_epsilon", type=_grey_levels, default=DEFAULT_ADVERSARIAL_EPSILON,
        help="strength of --adversarial's FGSM images, in grey levels of the 0..255 input")
    return group


def _grey_levels(text):
    """An argparse type: a number in 0..255 (:func:`dcnet_keras.validation.grey_levels`)."""
    try:
        return grey_levels("value", float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of grey levels in 0..255, "
                                         f"received {text!r}") from None
