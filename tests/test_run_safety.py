"""No run loses good work: divergence, foreign or contradicting resumes, finished reruns,
broken newest checkpoints, half-written logs, and mistakes caught before training.

Runs are in-process (``dcnet_keras.training.cifar.main``, the ``train_resnet.py`` scripts'
function, and ``python -m dcnet_keras.train``'s ``main``) on tiny networks and the synthetic
data set.  "Untouched" is checked byte for byte: a hash of every file of the run's folders
before and after.
"""

import hashlib
import json
import os
import shutil
import stat

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dcnet_keras import evaluate, export  # noqa: E402
from dcnet_keras.training import cifar as cifar_script  # noqa: E402
from dcnet_keras.training import cli  # noqa: E402

TINY = ["--dataset", "synthetic", "--widths", "4", "8", "8", "--units_per_stage", "1",
        "--batch_size", "16", "--log_every", "5", "--eval_every", "10",
        "--checkpoint_every", "10", "--no-progress", "--seed", "2"]


def folders(root):
    return ["--model_dir", str(root / "model"), "--log_dir", str(root / "log")]


def tree_hashes(*paths):
    """``{relative path: sha256}`` of every file under ``paths`` (folders or files)."""
    hashes = {}
    for top in paths:
        top = str(top)
        for base, _, files in os.walk(top):
            for name in files:
                path = os.path.join(base, name)
                with open(path, "rb") as f:
                    hashes[os.path.relpath(path, os.path.dirname(top))] = hashlib.sha256(
                        f.read()).hexdigest()
    return hashes


def train(variant, argv, capsys=None):
    return cifar_script.main(variant, argv=list(argv))


def exits_with_one_line(capsys, fn, *fragments):
    """``fn()`` ends the process with one ``error: ...`` line holding every fragment."""
    with pytest.raises(SystemExit) as info:
        fn()
    message = info.value.code
    assert isinstance(message, str) and message.startswith("error: "), (message,
                                                                        capsys.readouterr())
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A finished tanh_cos run: checkpoints at 10 and 19, logs, .keras, SavedModel."""
    root = tmp_path_factory.mktemp("good")
    result = train("tanh_cos", TINY + ["--max_steps", "20"] + folders(root))
    assert np.isfinite(result.test_accuracy)
    return root


def copy_run(good_run, tmp_path):
    shutil.copytree(good_run / "model", tmp_path / "model")
    shutil.copytree(good_run / "log", tmp_path / "log")
    return tmp_path


def checkpoint_numbers(root):
    folder = root / "model" / "checkpoints"
    return sorted(int(n[5:-6]) for n in os.listdir(folder) if n.endswith(".index"))


# --------------------------------------------------------------------------------------
# Divergence


def test_fresh_diverging_run_stops_and_saves_nothing_non_finite(tmp_path, capsys):
    message = exits_with_one_line(
        capsys, lambda: train("tanh_cos", TINY + ["--max_steps", "20", "--base_lr", "1e20"]
                              + folders(tmp_path)), "iteration ", "diverged")
    assert any(term in message for term in ("fit = nan", "reg = nan", "orth = nan",
                                            "fit = inf", "reg = inf", "orth = inf",
                                            "non-finite"))
    model_dir = tmp_path / "model"
    assert not (model_dir / "tanh_cos.keras").exists() and not (model_dir / "saved_model").exists()
    folder = model_dir / "checkpoints"
    if folder.exists():  # any checkpoint written holds finite values only
        for name in os.listdir(folder):
            if name.endswith(".index"):
                reader = tf.train.load_checkpoint(str(folder / name[:-6]))
                for key in reader.get_variable_to_shape_map():
                    value = reader.get_tensor(key)
                    if np.issubdtype(np.asarray(value).dtype, np.floating):
                        assert np.all(np.isfinite(value)), key


def test_diverging_from_good_checkpoints_leaves_them_byte_identical(good_run, tmp_path, capsys):
    root = copy_run(good_run, tmp_path)
    (root / "model" / "model_spec.json").unlink()  # a run of an older version: no record
    before = tree_hashes(root / "model", root / "log")
    exits_with_one_line(capsys, lambda: train(
        "tanh_cos", TINY + ["--max_steps", "40", "--base_lr", "1e20"] + folders(root)),
        "iteration 2", "diverged")
    assert "no model_spec.json" in capsys.readouterr().err  # the older-run warning
    after = tree_hashes(root / "model")
    assert {k: v for k, v in after.items() if k in before} == {
        k: v for k, v in before.items() if k.startswith("model")}
    assert checkpoint_numbers(root) == [10, 19]


# --------------------------------------------------------------------------------------
# The run remembers what it is


@pytest.mark.parametrize("argv,flag,stored,given", [
    (["--max_steps", "30", "--batch_size", "8"], "--batch_size", "16", "8"),
    (["--max_steps", "30", "--base_lr", "0.01"], "--base_lr", "0.001", "0.01"),
    (["--max_steps", "30", "--widths", "4", "8", "16"], "--widths", "[4, 8, 8]", "[4, 8, 16]"),
    (["--max_steps", "10"], "--max_steps", "20", "10"),
])
def test_resume_with_contradicting_flags_is_refused(good_run, tmp_path, capsys, argv, flag,
                                                    stored, given):
    root = copy_run(good_run, tmp_path)
    before = tree_hashes(root / "model", root / "log")
    base = [a for a in TINY]
    if "--batch_size" in argv:
        i = base.index("--batch_size")
        del base[i:i + 2]
    if "--widths" in argv:
        i = base.index("--widths")
        del base[i:i + 4]
    message = exits_with_one_line(capsys, lambda: train("tanh_cos", base + argv + folders(root)),
                                  flag, stored, given)
    assert str(root / "model") in message
    assert tree_hashes(root / "model", root / "log") == before


def test_another_variant_script_refuses_the_folder(good_run, tmp_path, capsys):
    root = copy_run(good_run, tmp_path)
    before = tree_hashes(root / "model", root / "log")
    exits_with_one_line(capsys, lambda: train("ball_cos", TINY + ["--max_steps", "30"]
                                              + folders(root)),
                        "--variant", "'tanh_cos'", "'ball_cos'")
    assert tree_hashes(root / "model", root / "log") == before


@pytest.mark.parametrize("variant", ["seg_cos", "ball_cos", "linear_cos", "baseline"])
def test_export_and_evaluate_refuse_another_variant(good_run, tmp_path, capsys, variant):
    model_dir = str(good_run / "model")
    exits_with_one_line(capsys, lambda: export.main(
        [model_dir, "--variant", variant, "--out", str(tmp_path / "s")]))
    exits_with_one_line(capsys, lambda: evaluate.main(
        [model_dir, "--variant", variant, "--source", "synthetic"]))
    assert not (tmp_path / "s").exists()


def test_export_and_evaluate_use_the_stored_configuration(good_run, tmp_path, capsys):
    path = export.main([str(good_run / "model"), "--out", str(tmp_path / "s")])
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o755 == 0o755, oct(mode)  # a server running as another user can read it
    accuracy = evaluate.main([str(good_run / "model"), "--source", "synthetic"])
    with open(good_run / "log" / "log_test.txt") as f:
        logged = float(f.read().splitlines()[-1].split("=")[-1])
    assert abs(accuracy[1] - logged) < 1e-4  # the run's own final test, same weights
    stored = json.loads((good_run / "model" / "model_spec.json").read_text())
    assert stored["model"]["variant"] == "tanh_cos" and stored["dataset"] == "cifar100"
    assert stored["recipe"]["batch_size"] == 16 and stored["recipe"]["base_lr"] == 1e-3


# --------------------------------------------------------------------------------------
# Finished runs, half-written logs, broken newest checkpoints


def test_rerun_of_a_finished_run_says_so_and_changes_nothing(good_run, tmp_path, capsys):
    root = copy_run(good_run, tmp_path)
    before = tree_hashes(root / "model", root / "log")
    train("tanh_cos", TINY + ["--max_steps", "20"] + folders(root))
    out = capsys.readouterr().out
    assert "already finished" in out and "final test accuracy" not in out
    assert tree_hashes(root / "model", root / "log") == before


def test_rerun_after_a_kill_during_export_exports_without_a_second_final_line(
        good_run, tmp_path, capsys):
    root = copy_run(good_run, tmp_path)
    shutil.rmtree(root / "model" / "saved_model")
    stale = root / "model" / "saved_model" / ".1.partial-x"
    stale.mkdir(parents=True)  # what a kill during the SavedModel write leaves
    test_log = (root / "log" / "log_test.txt").read_text()
    train("tanh_cos", TINY + ["--max_steps", "20"] + folders(root))
    assert (root / "model" / "saved_model" / "1" / "saved_model.pb").is_file()
    assert not stale.exists()
    assert (root / "log" / "log_test.txt").read_text() == test_log


def test_resume_drops_a_half_written_log_line_and_keeps_the_rest(good_run, tmp_path):
    root = copy_run(good_run, tmp_path)
    train_log = root / "log" / "log_train.txt"
    kept = train_log.read_text()
    with open(train_log, "a") as f:
        f.write("====iteration_20: fit=2.3")  # killed while appending
    train("tanh_cos", TINY + ["--max_steps", "30"] + folders(root))
    lines = train_log.read_text().splitlines()
    assert train_log.read_text().startswith(kept)
    assert [int(l.split("_")[1].split(":")[0]) for l in lines] == [5, 10, 15, 20, 25]
    assert all(l.count("acc=") == 1 for l in lines)


def test_broken_newest_checkpoint_falls_back_to_the_older_one(good_run, tmp_path, capsys):
    root = copy_run(good_run, tmp_path)
    folder = root / "model" / "checkpoints"
    data = [n for n in os.listdir(folder) if n.startswith("ckpt-19.data")][0]
    with open(folder / data, "r+b") as f:
        f.truncate(os.path.getsize(folder / data) // 2)
    (folder / "checkpoint").write_text("garbage\x00\n")
    train("tanh_cos", TINY + ["--max_steps", "20"] + folders(root))
    captured = capsys.readouterr()
    assert "resuming at iteration 11" in captured.out
    assert "ckpt-19" in captured.err and "warning" in captured.err
    tests = (root / "log" / "log_test.txt").read_text().splitlines()
    assert [int(l.split("_")[1].split(":")[0]) for l in tests] == [10, 19]


# --------------------------------------------------------------------------------------
# Mistakes caught before any training


def test_bad_folders_and_cluster_are_one_line_errors_before_training(tmp_path, capsys,
                                                                     monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    base = TINY + ["--max_steps", "5"]
    exits_with_one_line(capsys, lambda: train("tanh_cos", base + ["--model_dir", str(a_file)]),
                        "--model_dir", "is a file")
    exits_with_one_line(capsys, lambda: train(
        "tanh_cos", base + ["--model_dir", str(a_file / "sub")]), "--model_dir", str(a_file))
    exits_with_one_line(capsys, lambda: train(
        "tanh_cos", base + ["--model_dir", str(tmp_path / "m"), "--log_dir",
                            str(a_file / "log")]), "--log_dir", str(a_file))
    monkeypatch.delenv("TF_CONFIG", raising=False)
    exits_with_one_line(capsys, lambda: train(
        "tanh_cos", base + folders(tmp_path) + ["--strategy", "multiworker"]),
        "--strategy multiworker", "TF_CONFIG")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    exits_with_one_line(capsys, lambda: train(
        "tanh_cos", base + folders(tmp_path) + ["--strategy", "multiworker"]),
        "TF_CONFIG", "not valid JSON")
    assert sorted(os.listdir(tmp_path)) == ["a_file"]  # nothing created


@pytest.mark.parametrize("flag,value", [("--base_lr", "nan"), ("--base_lr", "inf"),
                                        ("--max_steps", "0"), ("--batch_size", "-1")])
def test_non_finite_or_non_positive_numbers_are_refused(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as info:
        train("tanh_cos", TINY + [flag, value] + folders(tmp_path))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and repr(value) in err
    assert not os.listdir(tmp_path)


def test_no_resume_moves_the_earlier_checkpoints_aside(good_run, tmp_path, capsys):
    root = copy_run(good_run, tmp_path)
    old = tree_hashes(root / "model" / "checkpoints")
    train("tanh_cos", TINY + ["--max_steps", "12", "--no-resume"] + folders(root))
    out = capsys.readouterr().out
    assert "resuming" not in out and "moved to" in out
    assert checkpoint_numbers(root) == [10, 11]  # only the new run's: 19 cannot be resumed
    aside = [p for p in (root / "model").iterdir() if p.name.startswith("checkpoints.before-")]
    assert len(aside) == 1
    moved = tree_hashes(aside[0])
    assert sorted(v for v in moved.values()) == sorted(old.values())  # kept byte for byte


def test_test_lines_read_back_in_both_formats():
    from dcnet_keras.training.run_logs import parse_test_line

    assert parse_test_line("acc", "++++iteration_19: test acc=0.2500\n") == (19, {1: 0.25})
    assert parse_test_line("top1_top5", "++++iteration_6: top1=0.1250, top5=0.5000\n") == (
        6, {1: 0.125, 5: 0.5})
    for line in ("====iteration_5: fit=1.0000, reg=0.0000, orth=0.0000, acc=0.5000",
                 "++++iteration_6: top1=0.1250", "garbage"):
        assert parse_test_line("acc", line) is None and parse_test_line("top1_top5", line) is None
