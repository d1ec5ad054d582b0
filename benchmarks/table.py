"""Plain-text table of the input-pipeline benchmarks."""


def print_table(rows, note):
    """``rows``: (name, rate, per-batch) strings; ``note``: how to read the table."""
    width = max(len(r[0]) for r in rows)
    print(f"{'pipeline':<{width}} | {'rate':>14} | {'':>14}")
    print("-" * (width + 34))
    for name, a, b in rows:
        print(f"{name:<{width}} | {a:>14} | {b:>14}")
    print(note)
