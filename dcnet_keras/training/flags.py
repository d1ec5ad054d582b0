"""Command-line flags the CIFAR-100 and ImageNet scripts share."""

import argparse

STRATEGY_HELP = ("auto: MirroredStrategy over all GPUs if several, else one device; mirrored: "
                 "over all GPUs (or logical CPUs); multiworker: MultiWorkerMirroredStrategy "
                 "configured by TF_CONFIG")


def positive(kind):
    """An argparse type accepting only positive numbers of ``kind``."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, received {text!r}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
        return value
    return parse


def add_common_flags(parser, defaults, name):
    """Flags of both scripts; ``defaults`` holds the recipe's numbers, ``name`` the log folder."""
    add = parser.add_argument
    add("--base_lr", type=positive(float), default=defaults["base_lr"],
        help=f"initial learning rate (x0.1 from iterations {defaults['drops']})")
    add("--batch_size", type=positive(int), default=defaults["batch_size"],
        help="global batch, split over the replicas")
    add("--max_steps", type=positive(int), default=defaults["max_steps"],
        help="training iterations")
    add("--eval_every", type=positive(int), default=defaults["eval_every"],
        help="test/validation pass every this many iterations")
    add("--log_every", type=positive(int), default=defaults["log_every"],
        help="training log line every this many iterations")
    add("--checkpoint_every", type=positive(int), default=defaults["checkpoint_every"],
        help="checkpoint every this many iterations (and at the end)")
    add("--model_dir", default=None,
        help=f"checkpoints and exported models (default <repo>/model/{name})")
    add("--log_dir", default=None,
        help=f"log files and TensorBoard (default <repo>/log/{name})")
    add("--strategy", default="auto", choices=("auto", "mirrored", "one_device", "multiworker"),
        help=STRATEGY_HELP)
    add("--seed", type=int, default=0, help="initialisation and data order")
    add("--deterministic", action="store_true",
        help="deterministic ops: a resumed run ends with exactly the weights of an "
             "uninterrupted one (slower)")
    add("--widths", type=positive(int), nargs=len(defaults["widths"]),
        default=list(defaults["widths"]), help="stage widths (small values for quick runs)")
    add("--resume", action=argparse.BooleanOptionalAction, default=True,
        help="continue from the newest checkpoint in --model_dir")
    add("--debias_moving_averages", action="store_true",
        help="zero-debias the moving averages (the original does not: its inference-mode "
             "accuracy means little before ~2000 iterations)")
    add("--no_export", action="store_true", help="skip the final .keras file and SavedModel")
    add("--progress", action=argparse.BooleanOptionalAction, default=True,
        help="show a progress bar")
    return parser
