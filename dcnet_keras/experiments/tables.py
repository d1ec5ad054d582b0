"""The paper's tables as data: their grids, the training behind every cell, the paper's numbers.

A table is one :class:`Table` in :data:`TABLES`: a title, rows and columns, and one
:class:`Cell` per filled position, holding the paper's number (``"N/C"`` where the paper
says the model did not converge), the :class:`Training` behind it and what is measured
(test error, or accuracy under an attack).  A position without a cell is ``-`` in the
paper and is not run.  The numbers are those of Liu et al., CVPR 2018 (arXiv 1804.08071).

* Table 1: CIFAR-100, TanhConv with cosine in the CIFAR ResNet-32 (the original code's
  network, our choice; the paper does not name it for this table), test error %: the three
  weighted operators and the three ways to optimise the original operator.
* Table 2: CIFAR-100, CNN-9 without batch norm, test error %.
* Table 3: CIFAR-100, CNN-9 with batch norm, without and with ReLU, test error %.
* Tables 7 and 8: CIFAR-10, CNN-9 (with BN and ReLU), accuracy % with no attack, FGSM and
  BIM, after standard and adversarial training.  Our reading of the paper's two
  side-by-side tables: Table 7 is the white-box attack, Table 8 the black-box one.
"""

import dataclasses

from dcnet_keras.registry import Registry

#: what a cell measures.
TEST_ERROR, ACCURACY = "test error (%)", "accuracy (%)"
NOT_CONVERGED = "N/C"


@dataclasses.dataclass(frozen=True)
class Training:
    """One training run: the network and operator (``variant``), ``batch_norm``
    (``None``: the variant's), network ``options`` (e.g. ``(("relu", False),)``),
    ``conv_options`` (e.g. ``(("weighted", "joint"),)``), the optimisation switches
    (``adversarial_epsilon`` in grey levels, used with ``adversarial="fgsm"``) and the
    seed.  Runs with equal fields are one run, shared by every table that needs it."""

    network: str
    variant: str
    dataset: str
    batch_norm: bool = None
    options: tuple = ()
    conv_options: tuple = ()
    projection: bool = True
    weighted_gradients: bool = False
    adversarial: str = "none"
    adversarial_epsilon: float = 8.0
    seed: int = 0

    @property
    def run_id(self):
        """The run's folder name, e.g. ``cifar100-cnn9-tanh_sqcos-wo_bn-wo_relu-seed0``."""
        parts = [self.dataset, self.network, self.variant]
        if self.batch_norm is False and not self.variant.endswith("_wo_bn"):
            parts.append("wo_bn")
        options = dict(self.options)
        if options.get("relu") is False:
            parts.append("wo_relu")
        weighted = dict(self.conv_options).get("weighted")
        if weighted:
            parts.append(f"weighted_{weighted}")
        if not self.projection:
            parts.append("no_projection")
        if self.weighted_gradients:
            parts.append("weighted_gradients")
        if self.adversarial != "none":
            parts.append(f"adversarial_{self.adversarial}{self.adversarial_epsilon:g}")
        parts.append(f"seed{self.seed}")
        return "-".join(parts)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One filled position: ``paper`` (a number or ``"N/C"``), the ``training`` behind it
    and ``attack``: ``None`` (the test error, or the clean accuracy) or
    ``(box, name)`` with ``box`` ``"white"`` / ``"black"`` and ``name`` ``"fgsm"`` /
    ``"bim"`` / ``"none"`` (the clean accuracy on the attacks' images)."""

    row: str
    column: str
    paper: object
    training: Training
    attack: tuple = None

    @property
    def key(self):
        return f"{self.row}/{self.column}"


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    title: str
    measure: str
    rows: tuple
    columns: tuple
    cells: tuple
    notes: str = ""

    def cell(self, row, column):
        for cell in self.cells:
            if (cell.row, cell.column) == (row, column):
                return cell
        return None

    def trainings(self):
        """Every training run the table needs (sources of black-box attacks included),
        each once, in order."""
        seen = {}
        for cell in self.cells:
            seen.setdefault(cell.training.run_id, cell.training)
            source = black_box_source(cell)
            if source is not None:
                seen.setdefault(source.run_id, source)
        return tuple(seen.values())


def black_box_source(cell):
    """The model a black-box cell's images are crafted on: a baseline trained the same way
    (standard or adversarial) with another seed (``seed + 1``); ``None`` for other cells."""
    if cell.attack is None or cell.attack[0] != "black":
        return None
    return dataclasses.replace(cell.training, variant="baseline", conv_options=(),
                               seed=cell.training.seed + 1)


TABLES = Registry("table")


def _table1():
    tanh = dict(network="cifar_resnet32", variant="tanh_cos", dataset="cifar100")
    rows = (
        ("linearly weighted operator", 22.95, dict(conv_options=(("weighted", "linear"),))),
        ("nonlinearly weighted, Eq. 15", 23.03, dict(conv_options=(("weighted", "joint"),))),
        ("nonlinearly weighted, Eq. 16", 23.38,
         dict(conv_options=(("weighted", "separate"),))),
        ("standard gradients", 23.09, dict(projection=False)),
        ("weight projection", 21.17, {}),
        ("weighted gradients", 21.45, dict(projection=False, weighted_gradients=True)),
    )
    column = "TanhConv"
    cells = tuple(Cell(row, column, paper, Training(**tanh, **extra))
                  for row, paper, extra in rows)
    return Table("table1", "Table 1: CIFAR-100, TanhConv (cosine), CIFAR ResNet-32",
                 TEST_ERROR, tuple(r for r, _, _ in rows), (column,), cells,
                 notes="weighted operators are never projected; 'weight projection' is the "
                       "original's training")


def _table2():
    columns = ("linear", "cosine", "square-cosine")
    angulars = dict(zip(columns, ("linear", "cos", "sqcos")))
    paper = {"LinearConv": (33.39, 31.76, NOT_CONVERGED), "TanhConv": (32.88, 31.88, 34.26),
             "SegConv": (34.69, 30.34, NOT_CONVERGED)}
    magnitudes = {"LinearConv": "linear", "TanhConv": "tanh", "SegConv": "seg"}
    base = dict(network="cnn9", dataset="cifar100", batch_norm=False)
    cells = [Cell("CNN baseline", "cosine", 35.30, Training(variant="baseline", **base))]
    for row, numbers in paper.items():
        for column, number in zip(columns, numbers):
            cells.append(Cell(row, column, number, Training(
                variant=f"{magnitudes[row]}_{angulars[column]}", **base)))
    return Table("table2", "Table 2: CIFAR-100, CNN-9 without batch norm", TEST_ERROR,
                 ("CNN baseline",) + tuple(paper), columns, tuple(cells))


def _table3():
    columns = ("cosine w/o ReLU", "sq-cosine w/o ReLU", "cosine w/ ReLU", "sq-cosine w/ ReLU")
    setups = (("cos", False), ("sqcos", False), ("cos", True), ("sqcos", True))
    paper = {
        "Sphere": (33.31, 25.90, 26.00, 26.97), "Ball": (31.81, 25.43, 25.18, 26.48),
        "Tanh": (32.27, 25.27, 25.15, 26.94), "Linear": (36.49, 24.36, 24.81, 25.14),
        "Seg": (33.57, 24.29, 24.96, 25.04), "Log": (33.62, 24.91, 25.17, 25.85),
        "Mix": (33.46, 24.93, 25.27, 25.77)}
    base = dict(network="cnn9", dataset="cifar100")
    cells = [Cell("CNN baseline", columns[0], 58.24,
                  Training(variant="baseline", options=(("relu", False),), **base)),
             Cell("CNN baseline", columns[2], 26.01,
                  Training(variant="baseline", options=(("relu", True),), **base))]
    for row, numbers in paper.items():
        for column, (angular, relu), number in zip(columns, setups, numbers):
            cells.append(Cell(row, column, number, Training(
                variant=f"{row.lower()}_{angular}", options=(("relu", relu),), **base)))
    return Table("table3", "Table 3: CIFAR-100, CNN-9 with batch norm", TEST_ERROR,
                 ("CNN baseline",) + tuple(paper), columns, tuple(cells))


#: Tables 7 and 8: (row, variant) and the paper's accuracies per (training, box).
_ROBUSTNESS_MODELS = (("baseline", "baseline"), ("SphereConv", "sphere_cos"),
                      ("BallConv", "ball_cos"), ("TanhConv", "tanh_cos"))
_ROBUSTNESS_PAPER = {
    ("standard", "white"): ((85.35, 18.82, 8.67), (88.58, 43.64, 8.89), (91.13, 50.47, 7.74),
                            (91.45, 52.60, 10.18)),
    ("standard", "black"): ((85.35, 50.90, 36.22), (88.58, 56.71, 43.10),
                            (91.13, 49.50, 27.48), (91.45, 50.61, 29.06)),
    ("adversarial", "white"): ((83.70, 78.96, 7.96), (87.41, 85.98, 35.07),
                               (87.47, 82.20, 17.38), (87.54, 81.46, 19.86)),
    ("adversarial", "black"): ((83.70, 77.57, 78.55), (87.41, 76.29, 77.79),
                               (87.47, 78.67, 80.59), (87.54, 80.38, 82.47)),
}
_ATTACK_COLUMNS = (("none", "none"), ("FGSM", "fgsm"), ("BIM", "bim"))


def _robustness_table(name, box, title):
    rows, cells = [], []
    for training, adversarial in (("standard", "none"), ("adversarial", "fgsm")):
        numbers = _ROBUSTNESS_PAPER[(training, box)]
        for (model, variant), row_numbers in zip(_ROBUSTNESS_MODELS, numbers):
            row = f"{model}, {training} training"
            rows.append(row)
            run = Training(network="cnn9", variant=variant, dataset="cifar10",
                           adversarial=adversarial)
            for (column, attack), number in zip(_ATTACK_COLUMNS, row_numbers):
                cells.append(Cell(row, column, number, run, attack=(box, attack)))
    return Table(name, title, ACCURACY, tuple(rows), tuple(c for c, _ in _ATTACK_COLUMNS),
                 tuple(cells),
                 notes=f"{box}-box attacks; black-box images are crafted on a baseline "
                       "trained the same way with another seed")


TABLES.register("table1", _table1())
TABLES.register("table2", _table2())
TABLES.register("table3", _table3())
TABLES.register("table7", _robustness_table(
    "table7", "white", "Table 7: CIFAR-10, CNN-9, white-box attacks (our reading)"))
TABLES.register("table8", _robustness_table(
    "table8", "black", "Table 8: CIFAR-10, CNN-9, black-box attacks (our reading)"))
