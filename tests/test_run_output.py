"""What a training run prints and records, and how often it reads the device.

* stdout: the original's train and test lines, always, each whole on its own line, in order;
  on a pipe nothing else (no ``\\r``, no escape codes); on a terminal a progress bar below them
  that never breaks a line (checked by replaying the output through a small terminal model).
* TensorBoard: the training scalars every ``--summary_every`` iterations from 0, whatever
  ``--log_every`` is.
* No host sync per iteration: the step values are read back at the sync points only (log,
  summary, test, checkpoint, every ``--check_every``, the end), and a divergence is still
  named at its first iteration.
* ``--mixed_precision`` (stored in the run record, checked on resume) and ``--jit_compile``.

Runs use CNN-9 at widths 4 8 8 on the synthetic CIFAR-10 set (offline).  Expected iteration
lists are worked out by hand from the flags, never taken from an earlier output.
"""

import io
import json
import math
import os
import re
import subprocess
import sys

import pytest

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

from dcnet_keras.training import cli, loop  # noqa: E402
from dcnet_keras.training import cifar as cifar_script  # noqa: E402
from dcnet_keras.training.progress import ERASE_LINE, RunOutput, bar_text  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = r"(-?\d+\.\d{4})"
TRAIN_LINE = re.compile(rf"^====iteration_(\d+): fit={NUMBER}, reg={NUMBER}, orth={NUMBER}, "
                        rf"acc={NUMBER}$")
TEST_LINE = re.compile(r"^\+\+\+\+iteration_(\d+): test acc=(\d\.\d{4})$")
TINY = ["--network", "cnn9", "--variant", "tanh_cos", "--source", "synthetic", "--widths", "4",
        "8", "8", "--batch_size", "8", "--seed", "0"]
# 12 iterations (i = 0..11): train lines at 4, 8; tests at 6 and at the end, 11.
TWELVE = ["--max_steps", "12", "--log_every", "4", "--eval_every", "6",
          "--checkpoint_every", "1000", "--no_export"]
EXPECTED_TWELVE = [("train", 4), ("test", 6), ("train", 8), ("test", 11)]


def folders(root):
    return ["--model_dir", str(root / "model"), "--log_dir", str(root / "log")]


def original_lines(lines):
    """``[(kind, i)]`` of the lines that are the original's; each must match its format
    whole (nothing glued before or after it)."""
    found = []
    for line in lines:
        if line.startswith("====iteration_") or "====iteration_" in line:
            match = TRAIN_LINE.match(line)
            assert match, f"train line broken: {line!r}"
            found.append(("train", int(match.group(1))))
        elif "++++iteration_" in line:
            match = TEST_LINE.match(line)
            assert match, f"test line broken: {line!r}"
            found.append(("test", int(match.group(1))))
    return found


def terminal_screen(raw):
    """The lines a terminal shows for ``raw``: ``\\r`` back to column 0, ``ESC[K`` erases to
    the end of the line, ``\\n`` a new line (at column 0, as a tty's output does), any other
    character overwrites the cell at the cursor."""
    lines, line, column, k = [], [], 0, 0
    while k < len(raw):
        if raw.startswith("\x1b[K", k):
            del line[column:]
            k += 3
            continue
        char = raw[k]
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append("".join(line))
            line, column = [], 0
        else:
            if column < len(line):
                line[column] = char
            else:
                line.extend(" " * (column - len(line)) + char)
            column += 1
        k += 1
    if line:
        lines.append("".join(line))
    return lines


class FakeTerminal(io.StringIO):
    """An in-memory stdout that says it is a terminal."""

    def isatty(self):
        return True


class ManualClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def exits_with_one_line(fn, *fragments):
    with pytest.raises(SystemExit) as info:
        fn()
    message = info.value.code
    assert isinstance(message, str) and message.startswith("error: "), message
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# --------------------------------------------------------------------------------------
# The bar on its own (no training)


def test_bar_text_shows_count_rate_fit_and_top1():
    # 5 of 20 done: 20 * 5 // 20 = 5 cells filled of 20; the count padded to 2 digits
    assert bar_text(5, 20, 2.0, {"fit": 1.23456, "top1": 0.5, "reg": 9.0}) == (
        " 5/20 [#####...............]  2.0 it/s  fit=1.2346  top1=0.5000")
    assert bar_text(0, 3, None, None) == "0/3 [....................]"
    assert len(bar_text(5, 20, 2.0, {"fit": 1.0, "top1": 0.5}, width=12)) == 11


def test_output_on_a_pipe_is_the_lines_alone():
    stream = io.StringIO()
    output = RunOutput(10, stream=stream, bar=True)
    output.line("first")
    output.progress(3, {"fit": 1.0, "top1": 0.5})
    output.line("second")
    output.close()
    assert stream.getvalue() == "first\nsecond\n"


def test_bar_redraws_at_most_every_half_second_and_never_breaks_a_line():
    clock, stream = ManualClock(), FakeTerminal()
    output = RunOutput(100, stream=stream, bar=True, min_interval=0.5, clock=clock)
    output.line("before the bar")
    for now, done in ((0.0, 1), (0.1, 2), (0.2, 3)):  # one draw: the first
        clock.now = now
        output.progress(done, {"fit": 2.0, "top1": 0.1})
    assert stream.getvalue().count(ERASE_LINE) == 1
    clock.now = 0.6
    output.progress(7, {"fit": 1.5, "top1": 0.2})  # 0.6 s after the first draw: drawn
    assert stream.getvalue().count(ERASE_LINE) == 2
    output.line("====iteration_7: a line")  # the bar erased, the line, the bar again
    assert stream.getvalue().count(ERASE_LINE) == 4
    output.close()
    screen = terminal_screen(stream.getvalue())
    # rate: 6 iterations (1 -> 7) in 0.6 s = 10 it/s
    assert screen == ["before the bar", "====iteration_7: a line",
                      "  7/100 [#...................]  10.0 it/s  fit=1.5000  top1=0.2000"]


def test_close_after_an_error_leaves_an_empty_line():
    stream = FakeTerminal()
    output = RunOutput(10, stream=stream, bar=True)
    output.progress(2, {"fit": 1.0, "top1": 0.5})
    output.close(keep=False)
    assert stream.getvalue().endswith(ERASE_LINE)
    assert terminal_screen(stream.getvalue()) == []


# --------------------------------------------------------------------------------------
# stdout of real runs


@pytest.mark.e2e
def test_piped_stdout_holds_the_original_lines_in_order_and_no_bar(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-m", "dcnet_keras.train", *TINY, *TWELVE, "--progress",
         *folders(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert original_lines(lines) == EXPECTED_TWELVE
    for line in lines:  # nothing but the original's lines and the run's ==== messages
        assert line.startswith(("====", "++++")), line
    assert lines[-1].startswith("==== final test accuracy after 12 iterations: top1=")
    # what is printed is what the log files hold
    log = tmp_path / "log"
    printed = [l for l in lines if l.startswith(("====iteration_", "++++iteration_"))]
    assert printed == [l for l in printed if l in (
        (log / "log_train.txt").read_text() + (log / "log_test.txt").read_text()).splitlines()]


def test_terminal_stdout_shows_the_bar_below_whole_lines(tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    cli.main([*TINY, *TWELVE, "--progress", *folders(tmp_path)], repo_root=str(tmp_path))
    raw = terminal.getvalue()
    assert "\r" in raw and ERASE_LINE in raw
    assert "\x1b" not in raw.replace(ERASE_LINE, "")  # no other escape code
    screen = terminal_screen(raw)
    assert original_lines(screen) == EXPECTED_TWELVE
    # the bar, left after the loop with all 12 iterations done: 20 of 20 cells
    bars = [line for line in screen if line.startswith("12/12 [" + "#" * 20 + "]")]
    assert len(bars) == 1, screen
    assert "fit=" in bars[0] and "top1=" in bars[0] and "it/s" in bars[0]
    # every original line is a line of its own in the raw output too: it starts right
    # after a newline or an erase, and ends with a newline
    for line in screen:
        if line.startswith(("====iteration_", "++++iteration_")):
            assert ("\n" + line + "\n") in raw or (ERASE_LINE + line + "\n") in raw, line


def test_no_progress_on_a_terminal_prints_the_lines_alone(tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    cli.main([*TINY, *TWELVE, "--no-progress", *folders(tmp_path)], repo_root=str(tmp_path))
    raw = terminal.getvalue()
    assert "\r" not in raw and "\x1b" not in raw
    assert original_lines(raw.splitlines()) == EXPECTED_TWELVE


# --------------------------------------------------------------------------------------
# TensorBoard


def event_scalars(folder):
    """``{tag: [(step, value)]}`` of every event file under ``folder``."""
    scalars = {}
    for base, _, files in os.walk(folder):
        for name in sorted(files):
            if "tfevents" not in name:
                continue
            for event in tf.compat.v1.train.summary_iterator(os.path.join(base, name)):
                for value in event.summary.value:
                    number = (float(tf.make_ndarray(value.tensor)) if value.HasField("tensor")
                              else value.simple_value)
                    scalars.setdefault(value.tag, []).append((event.step, number))
    return {tag: sorted(points) for tag, points in scalars.items()}


def test_tensorboard_gets_training_scalars_every_summary_every(tmp_path):
    cli.main([*TINY, "--max_steps", "30", "--log_every", "1000", "--eval_every", "1000",
              "--checkpoint_every", "1000", "--no_export", "--no-progress",
              *folders(tmp_path)], repo_root=str(tmp_path))
    scalars = event_scalars(tmp_path / "log" / "tensorboard")
    for tag in ("fit", "reg", "orth", "loss", "top1", "top5", "learning_rate"):
        assert [step for step, _ in scalars[f"train/{tag}"]] == [0, 10, 20], tag
    for (_, fit), (_, reg), (_, orth), (_, loss) in zip(
            *(scalars[f"train/{t}"] for t in ("fit", "reg", "orth", "loss"))):
        assert loss == pytest.approx(fit + reg + orth, rel=1e-5)  # loss = fit + reg + orth
    # spherenet_cnn9: 1e-3 until iteration 34000
    assert [v for _, v in scalars["train/learning_rate"]] == pytest.approx([1e-3] * 3)
    assert [step for step, _ in scalars["test/top1"]] == [29]  # the final test only
    assert (tmp_path / "log" / "log_train.txt").read_text() == ""  # no i % 1000 == 0, i > 0


# --------------------------------------------------------------------------------------
# No per-step host sync


def test_values_are_read_at_the_sync_points_only(tmp_path, monkeypatch):
    reads = []
    real = loop.read_values

    def counting(pending):
        reads.append([i for i, _ in pending])
        return real(pending)

    monkeypatch.setattr(loop, "read_values", counting)
    cli.main([*TINY, "--max_steps", "40", "--check_every", "10", "--log_every", "20",
              "--summary_every", "20", "--eval_every", "1000", "--checkpoint_every", "1000",
              "--no_export", "--no-progress", *folders(tmp_path)], repo_root=str(tmp_path))
    # sync points: i = 0 (summary), 10 (check), 20 (log, summary, check), 30 (check), and
    # after the loop (iterations 31..39, before the final checkpoint and test)
    assert reads == [[0], list(range(1, 11)), list(range(11, 21)), list(range(21, 31)),
                     list(range(31, 40))]
    lines = (tmp_path / "log" / "log_train.txt").read_text().splitlines()
    assert original_lines(lines) == [("train", 20)]


def test_divergence_between_checks_names_its_first_iteration(tmp_path, monkeypatch):
    real = loop.TrainStep

    class NanFitAt13(real):
        """The real step, whose returned fit is NaN at iteration 13 (the weights stay
        finite: only the check of the buffered values can catch it)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.iteration = 0

        def __call__(self, images, labels):
            values = dict(super().__call__(images, labels))
            if self.iteration == 13:
                values["fit"] = tf.constant(float("nan"))
            self.iteration += 1
            return values

    monkeypatch.setattr(loop, "TrainStep", NanFitAt13)
    exits_with_one_line(lambda: cli.main(
        [*TINY, "--max_steps", "40", "--check_every", "10", "--log_every", "1000",
         "--summary_every", "1000", "--eval_every", "1000", "--checkpoint_every", "10",
         "--no-progress", *folders(tmp_path)], repo_root=str(tmp_path)),
        "iteration 13: fit = nan", "diverged")
    # read at 20 (check and checkpoint): 11..20 checked in order, 13 named, nothing saved
    # after it: the checkpoint of 10 only, no export
    folder = tmp_path / "model" / "checkpoints"
    assert sorted(int(n[5:-6]) for n in os.listdir(folder) if n.endswith(".index")) == [10]
    assert not (tmp_path / "model" / "saved_model").exists()


# --------------------------------------------------------------------------------------
# --mixed_precision and --jit_compile


# float16 (loss scaling) in CI; bfloat16 is the same path without it (its model, fit and
# export are in tests/test_mixed_precision.py), slow tier
@pytest.mark.parametrize("precision,policy", [
    pytest.param("bfloat16", "mixed_bfloat16", marks=pytest.mark.slow),
    ("float16", "mixed_float16")])
def test_mixed_precision_trains_and_exports(tmp_path, precision, policy):
    result = cli.main([*TINY, "--max_steps", "4", "--log_every", "1", "--eval_every", "1000",
                       "--checkpoint_every", "1000", "--no-progress", "--mixed_precision",
                       precision, *folders(tmp_path)], repo_root=str(tmp_path))
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    policies = {layer.dtype_policy.name for layer in result.model.layers
                if layer.trainable_weights}
    assert policy in policies, policies
    lines = (tmp_path / "log" / "log_train.txt").read_text().splitlines()
    assert original_lines(lines) == [("train", 1), ("train", 2), ("train", 3)]
    for line in lines:
        assert all(math.isfinite(float(v)) for v in TRAIN_LINE.match(line).groups()[1:])
    assert math.isfinite(result.test_accuracy)
    model_dir = tmp_path / "model"
    assert (model_dir / "cnn9_tanh_cos.keras").is_file()
    assert (model_dir / "saved_model" / "1" / "saved_model.pb").is_file()
    assert json.loads((model_dir / "model_spec.json").read_text())["mixed_precision"] == precision


def test_resume_with_another_mixed_precision_is_refused(tmp_path):
    base = [*TINY, "--log_every", "1000", "--eval_every", "1000", "--checkpoint_every", "1000",
            "--no_export", "--no-progress", *folders(tmp_path)]
    cli.main(base + ["--max_steps", "2"], repo_root=str(tmp_path))
    record = tmp_path / "model" / "model_spec.json"
    assert json.loads(record.read_text())["mixed_precision"] == "off"
    before = record.read_text()
    message = exits_with_one_line(lambda: cli.main(
        base + ["--max_steps", "4", "--mixed_precision", "bfloat16"], repo_root=str(tmp_path)),
        "--mixed_precision", "'off'", "'bfloat16'")
    assert str(tmp_path / "model") in message
    # a record of an older version (no field) was trained in float32: the same refusal
    stored = json.loads(before)
    del stored["mixed_precision"]
    record.write_text(json.dumps(stored))
    exits_with_one_line(lambda: cli.main(
        base + ["--max_steps", "4", "--mixed_precision", "float16"], repo_root=str(tmp_path)),
        "--mixed_precision", "'off'", "'float16'")
    assert original_lines((tmp_path / "log" / "log_test.txt").read_text().splitlines()) == [
        ("test", 1)]  # the first run's final test; the refused resumes wrote nothing


def test_older_record_without_mixed_precision_resumes_as_off(tmp_path):
    from dcnet_keras.training.config import RunConfig
    from dcnet_keras.training.run_record import check_resume, write_run_record

    def fields(*extra):
        return cli.config_from_args(cli.build_parser().parse_args([*TINY, *extra]),
                                    str(tmp_path))[0]

    write_run_record(str(tmp_path), RunConfig(data=None, **fields()))
    stored = json.loads((tmp_path / "model_spec.json").read_text())
    del stored["mixed_precision"]
    (tmp_path / "model_spec.json").write_text(json.dumps(stored))
    assert check_resume(str(tmp_path), fields()) is True
    assert check_resume(str(tmp_path), fields("--jit_compile", "on")) is True  # not stored
    with pytest.raises(ValueError, match="--mixed_precision.*'off'.*'bfloat16'"):
        check_resume(str(tmp_path), fields("--mixed_precision", "bfloat16"))


def test_jit_compile_on_compiles_the_step_and_trains(tmp_path, monkeypatch):
    given = []
    real = loop.TrainStep

    class Recording(real):
        def __init__(self, *args, **kwargs):
            given.append(kwargs.get("jit_compile"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(loop, "TrainStep", Recording)
    result = cli.main([*TINY, "--max_steps", "3", "--log_every", "1", "--eval_every", "1000",
                       "--checkpoint_every", "1000", "--no_export", "--no-progress",
                       "--jit_compile", "on", *folders(tmp_path)], repo_root=str(tmp_path))
    assert given == [True]
    lines = (tmp_path / "log" / "log_train.txt").read_text().splitlines()
    assert original_lines(lines) == [("train", 1), ("train", 2)]
    assert 0.0 <= result.test_accuracy <= 1.0


def test_jit_compile_settings():
    assert loop.jit_enabled("on") is True and loop.jit_enabled("off") is False
    assert loop.jit_enabled("auto") is bool(tf.config.list_physical_devices("GPU"))
    assert loop.jit_enabled("auto", replicas=2) is False and loop.jit_enabled("on", 2) is True


@pytest.mark.parametrize("parser,flag,value", [
    (cli.build_parser, "--mixed_precision", "fp8"),
    (cli.build_parser, "--jit_compile", "yes"),
    (cli.build_parser, "--check_every", "0"),
    (cli.build_parser, "--summary_every", "-1"),
    (lambda: cifar_script.build_parser("tanh_cos"), "--mixed_precision", "half"),
])
def test_bad_run_flags_are_argparse_errors_naming_the_flag(capsys, parser, flag, value):
    with pytest.raises(SystemExit) as info:
        parser().parse_args([flag, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and repr(value) in err, err


@pytest.mark.parametrize("field,value", [("mixed_precision", "fp8"), ("jit_compile", True),
                                         ("check_every", 0), ("summary_every", 2.5)])
def test_run_config_refuses_bad_values_in_one_line(tmp_path, field, value):
    from dcnet_keras.training.config import RunConfig

    fields = cli.config_from_args(cli.build_parser().parse_args(TINY), str(tmp_path))[0]
    fields[field] = value
    with pytest.raises(ValueError) as info:
        RunConfig(data=None, **fields)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{field}: ") and repr(value) in message
