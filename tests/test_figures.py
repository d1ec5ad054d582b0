"""``python -m dcnet_keras.figures``: the paper's figures as PNG files of documented sizes.

Figure 3's curves are compared with the closed-form formulas written out here (the
paper's and the README's tables, with ``rho = 1``, ``alpha = 1``, ``beta`` 0.5 for seg and
1 for mix), never with an earlier output of the library; the PNG sizes are read from the
PNG header (IHDR width and height, big-endian, bytes 16..24) with ``struct``; the curves
figure reads log folders written by hand in the line formats of
``dcnet_keras.training.run_logs``; the feature figure trains its four tiny CNN-9 models on
the synthetic set through the training loop (about 40 s on 2 cores).
"""

import math
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from dcnet_keras.figures import __main__ as figures_cli
from dcnet_keras.figures import curves_figure, features_figure, operators_figure

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """``(width, height)`` from the PNG's IHDR chunk (the first chunk, after the 8-byte
    signature and the chunk's 4-byte length and 4-byte type)."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIGNATURE, head[:8]
    assert head[12:16] == b"IHDR", head[12:16]
    return struct.unpack(">II", head[16:24])


def assert_png(path, size):
    assert os.path.isfile(path), path
    assert os.path.getsize(path) > 1000, os.path.getsize(path)
    assert png_size(path) == size
    leftovers = [n for n in os.listdir(os.path.dirname(path)) if ".partial-" in n]
    assert leftovers == []


def one_line_exit(capsys, argv, *fragments):
    """``main(argv)`` exits with one line ``error: ...`` holding every fragment (a string
    ``SystemExit`` code: Python prints it to stderr and exits with status 1)."""
    with pytest.raises(SystemExit) as info:
        figures_cli.main(list(argv))
    code = info.value.code
    assert isinstance(code, str), code
    assert code.startswith("error: ") and "\n" not in code, code
    assert "Traceback" not in code
    for fragment in fragments:
        assert fragment in code, (fragment, code)
    return code


# --------------------------------------------------------------------------------------
# Figure 3


def test_documented_sizes():
    assert operators_figure.FIGURE_SIZE_PIXELS == (1000, 400)
    assert curves_figure.FIGURE_SIZE_PIXELS == (1200, 450)
    assert features_figure.FIGURE_SIZE_PIXELS == (1600, 450)
    for module in (operators_figure, curves_figure, features_figure):
        width, height = module.FIGURE_SIZE_INCHES
        assert (width * module.FIGURE_DPI, height * module.FIGURE_DPI) == \
            module.FIGURE_SIZE_PIXELS
        assert "%d x %d pixels" % module.FIGURE_SIZE_PIXELS in module.__doc__


def test_operators_command_writes_its_png(tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "figure3.png"  # the parent is created
    path = figures_cli.main(["operators", "--out", str(out)])
    assert path == str(out)
    assert_png(str(out), (1000, 400))
    assert f"wrote {out}" in capsys.readouterr().out
    figures_cli.main(["operators", "--out", str(out)])  # replaced in place
    assert_png(str(out), (1000, 400))


def test_magnitude_curves_are_the_closed_forms():
    curves = operators_figure.operator_curves(201)
    expected = {
        "sphere": lambda v: np.ones_like(v),
        "ball": lambda v: np.minimum(v, 1.0) / 1.0,
        "tanh": lambda v: np.tanh(v / 1.0),
        "linear": lambda v: v,
        "seg": lambda v: np.where(v < 1.0, v, 0.5 * v + 0.5),
        "log": lambda v: np.log1p(v),
        "mix": lambda v: v + np.log1p(v),
    }
    for name, formula in expected.items():
        x, y = curves[f"magnitude/{name}"]
        assert x.shape == y.shape == (201,)
        assert x[0] == 0.0 and x[-1] == 2.0
        for i in (0, 13, 50, 99, 100, 101, 150, 177, 200):  # x = 0.01 i; x[100] = 1 = rho
            assert y[i] == pytest.approx(formula(x[i]), rel=1e-6, abs=1e-6), (name, x[i])
    assert len(curves) == 12


def _sigmoid(theta, k):
    e = math.exp(-math.pi / (2 * k))
    z = np.exp(theta / k - math.pi / (2 * k))
    return (1 + e) / (1 - e) * (1 - z) / (1 + z)


def test_angular_curves_are_the_closed_forms():
    curves = operators_figure.operator_curves(201)
    expected = {
        "linear": lambda t: 1 - 2 * t / math.pi,
        "cos": np.cos,
        "sqcos": lambda t: np.sign(np.cos(t)) * np.cos(t) ** 2,
        "sigmoid_k0.3": lambda t: _sigmoid(t, 0.3),
        "sigmoid_k0.7": lambda t: _sigmoid(t, 0.7),
    }
    for name, formula in expected.items():
        theta, g = curves[f"angular/{name}"]
        assert theta[0] == 0.0 and theta[-1] == pytest.approx(math.pi)
        # inside (0, pi): the library's float32 arccos(cos theta) to ~1e-5; at the ends the
        # cosine is clipped to 1 - 1e-6 (theta ~ 0.0014), so they are compared loosely
        for i in (7, 40, 66, 100, 133, 160, 193):
            assert g[i] == pytest.approx(formula(theta[i]), abs=2e-4), (name, theta[i])
        for i in (0, 200):
            assert g[i] == pytest.approx(formula(theta[i]), abs=3e-3), (name, theta[i])
    sig = curves["angular/sigmoid_k0.3"][1]
    assert sig[0] == pytest.approx(1.0, abs=1e-3) and sig[100] == pytest.approx(0.0, abs=1e-5)


def test_operator_curves_come_from_the_library(monkeypatch):
    """Replacing the library's functions changes the sampled curves: they are not
    re-implemented in the figure."""
    from dcnet_keras import operators

    def fake_magnitude(name, v, rho_parts, alpha, beta):
        assert tuple(rho_parts) == (1.0, 1.0) and alpha == 1.0
        assert beta == {"seg": 0.5, "mix": 1.0}.get(name, beta)
        return v * 0.0 + 7.0

    monkeypatch.setattr(operators, "magnitude", fake_magnitude)
    monkeypatch.setattr(operators, "angular", lambda name, c, sigmoid_k=0.3: c * 0.0 - 3.0)
    curves = operators_figure.operator_curves(5)
    assert np.all(curves["magnitude/tanh"][1] == 7.0)
    assert np.all(curves["angular/sigmoid_k0.7"][1] == -3.0)
    with pytest.raises(ValueError, match="points"):
        operators_figure.operator_curves(1)


# --------------------------------------------------------------------------------------
# Training curves


ACC_TRAIN = ("====iteration_100: fit=2.3026, reg=0.1000, orth=0.0010, acc=0.1000\n"
             "====iteration_200: fit=1.5000, reg=0.0990, orth=0.0009, acc=0.4000\n"
             "a line of something else\n"
             "====iteration_300: fit=0.7500, reg=0.0980, orth=0.0008, acc=0.7000\n"
             "====iteration_400: fit=0.6")  # being written when the run stopped: skipped
ACC_TEST = ("++++iteration_500: test acc=0.3000\n"
            "++++iteration_1000: test acc=0.6500\n")
TOP_TRAIN = ("====iteration_500: fit=6.9000, reg=1.2000, orth=0.0100, top1=0.0010, top5=0.0050\n"
             "====iteration_1000: fit=6.1000, reg=1.1000, orth=0.0100, top1=0.0100, "
             "top5=0.0400\n")
TOP_TEST = ("++++iteration_4000: top1=0.0200, top5=0.0800\n"
            "++++iteration_8000: top1=0.0900, top5=0.2500\n"
            "++++iteration_12000: top1=0.1500, top5=0.3500\n")


def write_logs(folder, train, test):
    folder.mkdir(parents=True)
    (folder / "log_train.txt").write_text(train)
    (folder / "log_test.txt").write_text(test)
    return folder


def test_read_curves_parses_both_formats(tmp_path):
    acc = curves_figure.read_curves(write_logs(tmp_path / "tanh_cos", ACC_TRAIN, ACC_TEST))
    np.testing.assert_array_equal(acc["train_iterations"], [100, 200, 300])
    np.testing.assert_array_equal(acc["fit"], [2.3026, 1.5, 0.75])
    np.testing.assert_array_equal(acc["test_iterations"], [500, 1000])
    np.testing.assert_array_equal(acc["test_accuracy"], [0.3, 0.65])
    top = curves_figure.read_curves(str(write_logs(tmp_path / "imagenet", TOP_TRAIN, TOP_TEST)))
    np.testing.assert_array_equal(top["train_iterations"], [500, 1000])
    np.testing.assert_array_equal(top["fit"], [6.9, 6.1])
    np.testing.assert_array_equal(top["test_iterations"], [4000, 8000, 12000])
    np.testing.assert_array_equal(top["test_accuracy"], [0.02, 0.09, 0.15])  # top1


def test_read_curves_matches_the_run_logs_writer(tmp_path):
    """Lines written by ``RunLogs`` itself read back as their numbers."""
    from dcnet_keras.training.run_logs import RunLogs

    for log_format in ("acc", "top1_top5"):
        logs = RunLogs(str(tmp_path / log_format), log_format)
        for i, fit in ((10, 2.25), (20, 1.125)):
            logs.train(i, dict(fit=fit, reg=0.5, orth=0.0, top1=0.25, top5=0.5))
        logs.test(20, {1: 0.375, 5: 0.75})
        curves = curves_figure.read_curves(tmp_path / log_format)
        np.testing.assert_array_equal(curves["train_iterations"], [10, 20])
        np.testing.assert_array_equal(curves["fit"], [2.25, 1.125])
        np.testing.assert_array_equal(curves["test_iterations"], [20])
        np.testing.assert_array_equal(curves["test_accuracy"], [0.375])


def test_curves_command_writes_its_png(tmp_path, capsys):
    a = write_logs(tmp_path / "log" / "tanh_cos", ACC_TRAIN, ACC_TEST)
    b = write_logs(tmp_path / "log" / "imagenet", TOP_TRAIN, TOP_TEST)
    out = tmp_path / "figures" / "curves.png"
    figures_cli.main(["curves", str(a), str(b), "--out", str(out)])
    assert_png(str(out), (1200, 450))
    out2 = tmp_path / "curves_labelled.png"
    figures_cli.main(["curves", str(a), str(b), "--out", str(out2), "--labels", "A", "B"])
    assert_png(str(out2), (1200, 450))
    assert curves_figure.check_labels([str(a), str(b)], None) == ["tanh_cos", "imagenet"]
    assert curves_figure.default_labels(["/x/a/tanh_cos/log", "/x/b/tanh_cos/log/", "/x/c/log"]) \
        == ["a/tanh_cos/log", "b/tanh_cos/log", "x/c/log"]


def test_a_folder_without_logs_is_one_error_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError) as info:
        curves_figure.read_curves(empty)
    assert str(empty) in str(info.value) and "\n" not in str(info.value)
    good = write_logs(tmp_path / "good", ACC_TRAIN, ACC_TEST)
    out = tmp_path / "curves.png"
    one_line_exit(capsys, ["curves", str(good), str(empty), "--out", str(out)], str(empty),
                  "log_train.txt")
    one_line_exit(capsys, ["curves", str(tmp_path / "nowhere"), "--out", str(out)],
                  str(tmp_path / "nowhere"), "no such folder")
    (empty / "log_train.txt").write_text(ACC_TRAIN)  # one of the two is not enough
    one_line_exit(capsys, ["curves", str(empty), "--out", str(out)], str(empty),
                  "log_test.txt")
    one_line_exit(capsys, ["curves", str(good), "--out", str(out), "--labels", "a", "b"],
                  "--labels", "received 2")
    assert not out.exists()


def test_bad_arguments_are_one_error_line(tmp_path, capsys):
    good = write_logs(tmp_path / "good", ACC_TRAIN, ACC_TEST)
    one_line_exit(capsys, ["figure4", "--out", str(tmp_path / "x.png")], "figure4")
    one_line_exit(capsys, ["operators", "--out", str(tmp_path / "x.jpg")], "--out", "x.jpg")
    one_line_exit(capsys, ["operators", "--out", str(tmp_path)], "--out", str(tmp_path))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    one_line_exit(capsys, ["curves", str(good), "--out", str(blocker / "c.png")], "--out",
                  "is a file")
    one_line_exit(capsys, ["operators"], "--out")


def test_bad_feature_arguments_stop_before_any_training(tmp_path, capsys):
    work = tmp_path / "work"
    argv = ["features", "--out", str(tmp_path / "f.png"), "--work_dir", str(work)]
    one_line_exit(capsys, argv + ["--preset", "huge"], "--preset", "huge", "tiny", "full")
    one_line_exit(capsys, argv + ["--dataset", "cifar100"], "--dataset", "cifar100", "10-class")
    one_line_exit(capsys, argv + ["--dataset", "mnist"], "--dataset", "mnist")
    one_line_exit(capsys, argv + ["--source", "floppy"], "--source", "floppy")
    one_line_exit(capsys, argv + ["--source", "binary", "--data_dir", str(tmp_path / "none")],
                  str(tmp_path / "none"))
    assert not work.exists() and not (tmp_path / "f.png").exists()
    with pytest.raises(ValueError, match="--preset"):
        features_figure.features_figure(str(tmp_path / "f.png"), preset="medium")


MATPLOTLIB_BLOCKED = """
import os, sys
sys.modules["matplotlib"] = None  # import matplotlib now raises ImportError
import dcnet_keras, dcnet_keras.figures.__main__
from dcnet_keras.figures import curves_figure, features_figure, operators_figure
assert len(operators_figure.operator_curves(5)) == 12
print("imported without matplotlib", flush=True)
dcnet_keras.figures.__main__.main(sys.argv[1:])
"""


def test_without_matplotlib_imports_work_and_the_command_exits_1(tmp_path):
    """The modules import without matplotlib; the command then stops with one line and
    exit status 1 before any training."""
    work = tmp_path / "work"
    child = subprocess.run(
        [sys.executable, "-c", MATPLOTLIB_BLOCKED, "features", "--out", str(tmp_path / "f.png"),
         "--work_dir", str(work)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert child.returncode == 1, child
    assert child.stdout.strip() == "imported without matplotlib", child.stdout
    lines = [line for line in child.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "pip install matplotlib" in lines[0], child.stderr
    assert "Traceback" not in child.stderr
    assert not work.exists()


# --------------------------------------------------------------------------------------
# The 2-D feature figure (tiny preset, synthetic data)


def test_features_command_tiny_writes_its_png_and_reruns_skip(tmp_path, capsys):
    tf = pytest.importorskip("tensorflow")
    del tf
    out = tmp_path / "figures" / "features.png"
    work = tmp_path / "work"
    figures_cli.main(["features", "--out", str(out), "--preset", "tiny", "--source",
                      "synthetic", "--work_dir", str(work)])
    assert_png(str(out), (1600, 450))
    first = capsys.readouterr().out
    assert "synthetic" in first
    for variant in features_figure.VARIANTS:
        assert (work / "model" / variant / "checkpoints").is_dir(), variant
        curves = curves_figure.read_curves(work / "log" / variant)  # the runs' own logs
        # the experiments_tiny recipe: a log line every 20, one test at the end
        np.testing.assert_array_equal(curves["train_iterations"], [20, 40])
        np.testing.assert_array_equal(curves["test_iterations"], [59])
        assert np.all(np.isfinite(curves["fit"]))
    # the runs resume: a rerun trains nothing and draws from the stored models
    result = features_figure.features_figure(str(tmp_path / "again.png"), "tiny",
                                             work_dir=str(work))
    assert_png(result.path, (1600, 450))
    assert capsys.readouterr().out.count("already finished") == 4
    # other settings in the same folder: one line, before any training
    one_line_exit(capsys, ["features", "--out", str(tmp_path / "full.png"), "--preset", "full",
                           "--source", "synthetic", "--work_dir", str(work)], "--work_dir",
                  str(work / "model" / "baseline"), "another --work_dir")
    assert not (tmp_path / "full.png").exists()
    for variant in features_figure.VARIANTS:
        features = result.features[variant]
        assert features.shape == (500, 2) and np.all(np.isfinite(features))
        assert sorted(set(result.labels[variant].tolist())) == list(range(10))
        assert 0.0 <= result.test_accuracy[variant] <= 1.0
        assert features.std(axis=0).min() > 0.0
    # a decoupled fc6 with a bounded magnitude: |h g| <= 1
    for variant in ("sphere_cos", "ball_cos", "tanh_cos"):
        assert np.abs(result.features[variant]).max() <= 1.0 + 1e-5
