"""Access to ../shared/fixtures: checkpoints and outputs written by the original TF1 code."""

import json
import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.environ.get("DCNET_FIXTURES",
                          os.path.join(os.path.dirname(REPO), "shared", "fixtures"))
MODELS = ("tanh_cos", "ball_cos", "seg_cos", "linear_cos", "linear_sqcos_wo_bn", "imagenet")

requires_fixtures = pytest.mark.skipif(
    not os.path.isdir(FIXTURES),
    reason=f"TF1 fixtures not found at {FIXTURES} (expected ../shared/fixtures beside the "
           "checkout; set DCNET_FIXTURES to override)")


def folder(model, kind):
    return os.path.join(FIXTURES, model, kind)


def manifest(model, kind):
    with open(os.path.join(folder(model, kind), "manifest.json")) as f:
        return json.load(f)


def npz(model, kind, name):
    return dict(np.load(os.path.join(folder(model, kind), name)))


def build(model, kind, **kwargs):
    """Our model at the fixture's widths, through the network registry (the fixture's
    model name is a preset)."""
    from dcnet_keras.models import build_model

    info = manifest(model, kind)
    widths = tuple(int(w) for w in info["widths"].split(","))
    if model != "imagenet":
        kwargs["units_per_stage"] = info["units"]
    return build_model(model, num_classes=info["n_class"], widths=widths, **kwargs)


def relative_error(actual, expected):
    """max |actual - expected| / max |expected| (the fixtures' tolerance convention)."""
    if hasattr(actual, "detach"):  # a torch tensor
        actual = actual.detach().cpu()
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = np.abs(expected).max()
    return float(np.abs(actual - expected).max() / (scale if scale > 0 else 1.0))


def moving_averages_by_checkpoint_name(model, names):
    """``{checkpoint name: value}`` of our model's moving averages, for ``names``."""
    import keras

    from dcnet_keras.tf1_checkpoint import checkpoint_plan, index_moving_averages

    index = index_moving_averages(names)
    values = {}
    for variable, source in checkpoint_plan(model):
        if isinstance(source, tuple) and source in index:
            values[index[source]] = keras.ops.convert_to_numpy(variable)
    return values
