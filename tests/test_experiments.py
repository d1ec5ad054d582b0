"""The table runners at the ``tiny`` scale, end to end, as CI runs them.

Each table's Markdown is parsed: every position the paper fills holds ``ours (paper)``
with the paper's number (some checked against the paper's tables written out here) and
ours filled in (a number or ``N/C``); the positions the paper leaves empty are ``-``.
A rerun trains nothing.  ``--cells`` runs part of a grid; bad flags are one line.
"""

import json
import re

import pytest

pytest.importorskip("tensorflow")

from assertions import cli_error_line  # noqa: E402
from dcnet_keras.experiments.__main__ import main  # noqa: E402

NUMBER = r"(?:N/C|\d+\.\d\d)"
FILLED = re.compile(rf"^({NUMBER}) \(({NUMBER})\)$")
#: a few cells of the paper (Liu et al., CVPR 2018), by table: (row, column) -> number.
PAPER = {
    "table1": {("weight projection", "TanhConv"): "21.17",
               ("nonlinearly weighted, Eq. 15", "TanhConv"): "23.03"},
    "table2": {("TanhConv", "square-cosine"): "34.26", ("SegConv", "square-cosine"): "N/C",
               ("CNN baseline", "cosine"): "35.30"},
    "table3": {("Mix", "sq-cosine w/ ReLU"): "25.77", ("CNN baseline", "cosine w/o ReLU"): "58.24",
               ("Linear", "sq-cosine w/o ReLU"): "24.36"},
    "table7": {("TanhConv, standard training", "BIM"): "10.18",
               ("SphereConv, adversarial training", "FGSM"): "85.98"},
    "table8": {("BallConv, adversarial training", "BIM"): "80.59",
               ("baseline, standard training", "FGSM"): "50.90"},
}
#: positions the paper leaves empty.
EMPTY = {"table2": {("CNN baseline", "linear"), ("CNN baseline", "square-cosine")},
         "table3": {("CNN baseline", "sq-cosine w/o ReLU"), ("CNN baseline", "sq-cosine w/ ReLU")}}
SHAPES = {"table1": (6, 1), "table2": (4, 3), "table3": (8, 4), "table7": (8, 3),
          "table8": (8, 3)}


def parse(path):
    """``{(row, column): text}`` of the Markdown table in ``path``."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    columns = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    cells = {}
    for line in lines[2:]:
        row, *texts = [c.strip() for c in line.strip("|").split("|")]
        cells.update({(row, column): text for column, text in zip(columns, texts)})
    return cells, columns


def check_table(out, name):
    cells, columns = parse(out / f"{name}.md")
    rows = {row for row, _ in cells}
    assert (len(rows), len(columns)) == SHAPES[name]
    for position, text in cells.items():
        if position in EMPTY.get(name, ()):
            assert text == "-", (position, text)
            continue
        assert FILLED.match(text), (position, text)
    for position, paper in PAPER[name].items():
        assert FILLED.match(cells[position]).group(2) == paper, (position, cells[position])
    raw = json.loads((out / f"{name}.json").read_text())
    assert len(raw["cells"]) == len(cells) - len(EMPTY.get(name, ()))
    assert all(cell["ours"] != "not run" for cell in raw["cells"])
    assert (out / f"{name}_curves.png").stat().st_size > 0
    return cells


def run(out, *argv):
    return main([*argv, "--preset", "tiny", "--out", str(out)])


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["table1", "table2", "table3"])
def test_test_error_tables_fill_every_cell_and_rerun_skips(tmp_path, capsys, name):
    run(tmp_path, name)
    first = check_table(tmp_path, name)
    capsys.readouterr()
    run(tmp_path, name)
    printed = capsys.readouterr().out
    assert f"==== {name}: training" not in printed
    assert printed.count("finished before: skipped") >= SHAPES[name][0]
    assert check_table(tmp_path, name) == first


@pytest.mark.e2e
def test_attack_tables_share_their_runs(tmp_path, capsys):
    run(tmp_path, "table7")
    white = check_table(tmp_path, "table7")
    capsys.readouterr()
    run(tmp_path, "table8")
    printed = capsys.readouterr().out
    black = check_table(tmp_path, "table8")
    # table 8 trains only its two black-box sources (baselines with another seed)
    assert printed.count("==== table8: training ") == 2, printed
    for row in ("TanhConv, standard training", "baseline, adversarial training"):
        # the same model, the same clean images
        assert black[(row, "none")].split()[0] == white[(row, "none")].split()[0]
    raw = json.loads((tmp_path / "table8.json").read_text())
    sources = {key.split("/from/")[1] for run in raw["runs"].values()
               for key in run.get("attacks", {}) if "/from/" in key}
    assert sources == {"cifar10-cnn9-baseline-seed1",
                       "cifar10-cnn9-baseline-adversarial_fgsm8-seed1"}, sources


@pytest.mark.e2e
def test_cells_runs_part_of_a_grid(tmp_path):
    values, _ = run(tmp_path, "table2", "--cells", "tanhconv/cos*")
    assert list(values) == ["TanhConv/cosine"]
    cells, _ = parse(tmp_path / "table2.md")
    assert cells[("TanhConv", "cosine")].split()[0] != "not"
    assert cells[("SegConv", "cosine")] == "not run (30.34)"


@pytest.mark.parametrize("argv,flag", [
    (["table2", "--cells", "nothing*"], "--cells"),
    (["table7", "--epsilon", "-1"], "--epsilon"),
    (["table7", "--iterations", "0"], "--iterations"),
    (["table2", "--data_dir", "/no/such/folder"], "--data_dir"),
])
def test_bad_flags_are_one_line_errors_before_training(tmp_path, argv, flag):
    message = cli_error_line(main, argv + ["--out", str(tmp_path)])
    assert message.startswith(f"error: {flag}:"), message
    assert not (tmp_path / "runs").exists()
