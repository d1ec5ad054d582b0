"""``python -m dcnet_keras.list``: every registered network, preset, dataset and recipe.

It only reads the registries (no model is built, no data is read).
"""

import sys


def catalog():
    """The registries as lines of text."""
    from dcnet_keras.data.registry import DATASETS
    from dcnet_keras.models.registry import NETWORKS
    from dcnet_keras.presets import PRESETS
    from dcnet_keras.recipes import RECIPES

    lines = ["networks (--network; operator from --variant):"]
    for name, net in NETWORKS.items():
        options = ", ".join(f"{k}={v}" for k, v in net.options.items())
        lines.append(f"  {name:<20} {net.input_kind} input, {net.num_classes} classes; "
                     f"{options}; recipe {net.default_recipe}: {net.description}")
    lines.append("presets (--preset):")
    for name, p in PRESETS.items():
        options = ", ".join(f"{k}={v}" for k, v in p.options)
        lines.append(f"  {name:<20} {p.network} {p.variant}, {p.num_classes} classes, "
                     f"{options}; {p.dataset}, recipe {p.recipe}")
    lines.append("datasets (--dataset):")
    for name, d in DATASETS.items():
        lines.append(f"  {name:<20} {d.num_classes} classes; --source {'|'.join(d.sources)}: "
                     f"{d.description}")
    lines.append("recipes (--recipe):")
    for name, r in RECIPES.items():
        lines.append(f"  {name:<20} {r.optimizer} lr {r.base_lr:g} x{r.drop_factor:g} at "
                     f"{', '.join(map(str, r.drops))}; {r.max_steps} iterations of batch "
                     f"{r.batch_size}; {r.augmentation}; test every {r.eval_every}: "
                     f"{r.description}")
    return lines


def main():
    sys.stdout.write("\n".join(catalog()) + "\n")


if __name__ == "__main__":
    main()
