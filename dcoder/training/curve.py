"""Learning curves of training runs: validation loss and benchmark exact match against tokens seen.

Reads each run folder's ``log.jsonl`` (written by ``dcoder.training.train``), prints one table row per
run (its last figures) and draws a PNG with matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

import json
from pathlib import Path

from dcoder.errors import DcoderError


def read_log(run: str | Path) -> list[dict]:
    path = Path(run) / "log.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DcoderError(f"no training log in {run} (expected {path})") from None
    out = []
    for n, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if n < len(lines):  # the last line may be cut by a run stopped mid-write
                raise DcoderError(f"{path} line {n} is not JSON") from None
    return out


def series(log: list[dict], key: str) -> list[tuple[int, float]]:
    """(tokens seen, value) for every entry with ``key``; the nested bench figures as ``bench_exact.KIND``."""
    tokens = 0
    points = []
    for entry in log:
        tokens = entry.get("tokens_seen", tokens)
        value = entry
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            points.append((tokens, float(value)))
    return points


def bench_kinds(log: list[dict]) -> list[str]:
    return sorted({k for e in log for k in e.get("bench_exact", {})})


def summary(runs: list[str]) -> list[dict]:
    rows = []
    for run in runs:
        log = read_log(run)
        row = {"run": Path(run).name, "steps": max((e.get("step", 0) for e in log), default=0),
               "tokens_seen": max((e.get("tokens_seen", 0) for e in log), default=0)}
        for key in ("val_ce", "val_ar_ce"):
            points = series(log, key)
            row[key] = points[-1][1] if points else None
        for kind in bench_kinds(log):
            points = series(log, f"bench_exact.{kind}")
            row[f"exact {kind}"] = points[-1][1] if points else None
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """A Markdown table of ``summary`` rows."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def plot(runs: list[str], out: str | Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DcoderError("drawing learning curves needs matplotlib: pip install 'dcoder-diffusion[plot]'") from None
    logs = {Path(r).name: read_log(r) for r in runs}
    benched = any(bench_kinds(log) for log in logs.values())
    fig, axes = plt.subplots(1, 2 if benched else 1, figsize=(11 if benched else 6, 4.2), squeeze=False)
    loss_ax, exact_ax = axes[0][0], axes[0][-1]
    for name, log in logs.items():
        points = series(log, "val_ce")
        if points:
            line, = loss_ax.plot(*zip(*points), marker="o", ms=3, label=name)
            ar = series(log, "val_ar_ce")
            if ar:
                loss_ax.plot(*zip(*ar), ls=":", color=line.get_color(), label=f"{name} (next-token)")
        for kind in bench_kinds(log):
            points = series(log, f"bench_exact.{kind}")
            exact_ax.plot(*zip(*points), marker="o", ms=3, label=f"{name}: {kind}")
    loss_ax.set(xlabel="tokens seen", ylabel="validation cross-entropy (masked tokens)", title="validation loss")
    if benched:
        exact_ax.set(xlabel="tokens seen", ylabel="exact match", title="benchmark exact match", ylim=(0, None))
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
