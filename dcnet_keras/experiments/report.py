"""A table's results in the paper's layout: ``<out>/<table>.md``, ``<out>/<table>.json``.

Every filled cell reads ``ours (paper)``: our number (or ``N/C``, or ``not run`` when
``--cells`` left it out) and the paper's in brackets; a position the paper leaves empty
is ``-``.  The JSON holds the raw results: per cell the paper's number, ours and its run,
and per run its ``result.json``.
"""

import json
import os

from dcnet_keras.export.atomic import atomic_write_text

NOT_RUN = "not run"
EMPTY = "-"


def _number(value):
    return f"{value:.2f}" if isinstance(value, (int, float)) else str(value)


def cell_text(ours, paper):
    """``"<ours> (<paper>)"``, e.g. ``"31.20 (31.76)"``, ``"N/C (N/C)"``, ``"not run (25.18)"``."""
    return f"{_number(ours)} ({_number(paper)})"


def markdown(table, values, scale, data_lines, seconds):
    """The table as Markdown: a title, what was run, the grid."""
    lines = [f"# {table.title}", "",
             f"{table.measure}; each cell: ours (paper). Scale `{scale.name}`: "
             f"{scale.description}."]
    lines += [f"Data: {line}." for line in data_lines]
    if table.notes:
        lines.append(f"Notes: {table.notes}.")
    lines.append(f"Time: {seconds:.0f} s for the cells run by this invocation.")
    lines += ["", "| | " + " | ".join(table.columns) + " |",
              "|---|" + "---|" * len(table.columns)]
    for row in table.rows:
        texts = []
        for column in table.columns:
            cell = table.cell(row, column)
            texts.append(EMPTY if cell is None
                         else cell_text(values.get(cell.key, NOT_RUN), cell.paper))
        lines.append(f"| {row} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def raw(table, values, scale, results):
    """The JSON of the raw results."""
    cells = [dict(row=cell.row, column=cell.column, paper=cell.paper,
                  ours=values.get(cell.key, NOT_RUN), run=cell.training.run_id,
                  attack=list(cell.attack) if cell.attack else None)
             for cell in table.cells]
    return dict(table=table.name, title=table.title, measure=table.measure, scale=scale.name,
                cells=cells, runs=results)


def write(out, table, values, scale, results, data_lines, seconds):
    """Write ``<out>/<table>.md`` and ``<out>/<table>.json``; returns the Markdown."""
    os.makedirs(out, exist_ok=True)
    text = markdown(table, values, scale, data_lines, seconds)
    atomic_write_text(os.path.join(out, f"{table.name}.md"), text)
    atomic_write_text(os.path.join(out, f"{table.name}.json"),
                      json.dumps(raw(table, values, scale, results), indent=2) + "\n")
    return text
