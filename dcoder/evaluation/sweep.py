"""``dcoder eval --sweep``: the same tasks over a grid of decoding settings, in one run.

Each ``--sweep`` value is a group of ``KEY=V1,V2,...`` words; a group gives the settings of
every combination of its values, the other settings coming from the command's flags; the
groups' settings are run in turn. Per setting: exact match, pass@1, parse rate, the share of
fills equal to the first setting's (put the slowest, most careful setting first: this says what
the faster ones give up even when exact match is too low to tell), forward passes per fill
token, tokens and masked positions resolved per forward pass, ms per task.
"""

from __future__ import annotations

import itertools
import sys
import time
from dataclasses import replace

from dcoder.config import ALGS, POLICIES, SamplerConfig
from dcoder.errors import DcoderError
from dcoder.evaluation.evaluate import ModelFiller, Task, elapsed, normalize, run_file, summarize, write_json
from dcoder.evaluation.execution import Sandbox

KEYS = {"steps": int, "threshold": float, "alg": str, "policy": str}


def _value(key: str, text: str):
    if key == "threshold" and text.lower() == "none":
        return None
    try:
        value = KEYS[key](text)
    except ValueError:
        raise DcoderError(f"--sweep {key}={text!r}: not a {KEYS[key].__name__}") from None
    choices = {"alg": ALGS, "policy": POLICIES}.get(key)
    if choices is not None and value not in choices:
        raise DcoderError(f"--sweep: unknown {key} {value!r} (choose from {', '.join(choices)})")
    return value


def parse_grid(groups: list[str]) -> list[dict]:
    """The settings (key -> value overrides) of every ``--sweep`` group, in order, each once."""
    points: list[dict] = []
    for group in groups:
        axes = {}
        for word in group.split():
            key, eq, values = word.partition("=")
            if not eq or key not in KEYS or not values:
                raise DcoderError(f"--sweep takes KEY=V1,V2 words with KEY one of {', '.join(KEYS)}; got {word!r}")
            if key in axes:
                raise DcoderError(f"--sweep {group!r} names {key} twice")
            axes[key] = [_value(key, v) for v in values.split(",")]
        if not axes:
            raise DcoderError("--sweep needs at least one KEY=V1,V2 word")
        for combo in itertools.product(*axes.values()):
            point = dict(zip(axes, combo))
            if point not in points:
                points.append(point)
    return points


def label(point: dict) -> str:
    return " ".join(f"{k}={'none' if v is None else v}" for k, v in point.items())


def sampler_for(base: SamplerConfig, point: dict) -> SamplerConfig:
    """``base`` with the point's settings (policy learned reads the weights of --policy-file)."""
    if point.get("policy", base.policy) == "learned" and base.learned is None:
        raise DcoderError("--sweep policy=learned needs --policy-file FILE")
    return replace(base, **point)


COLUMNS = (("exact", "exact_match", 3), ("pass@1", "pass@1", 3), ("parses", "parse_rate", 3),
           ("same", "same_as_first", 3),
           ("passes/tok", "forward_passes_per_token", 2), ("tok/pass", "tokens_per_forward", 3),
           ("pos/pass", "positions_per_forward", 2), ("ms/task", "ms_per_task", 0))


def table(rows: list[dict]) -> str:
    head = ["setting"] + [c[0] for c in COLUMNS]
    body = [[r["setting"]] + ["-" if r[key] is None else f"{r[key]:.{d}f}" for _, key, d in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in [head] + body) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     for line in [head] + body)


def plot(rows: list[dict], path: str, title: str) -> None:
    """Exact match and agreement with the first setting against masked positions resolved per forward pass."""
    try:
        import matplotlib
    except ImportError:
        raise DcoderError("--png needs matplotlib: pip install 'dcoder-diffusion[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    markers = "osD^v<>phX*"
    names = (("exact_match", "exact match"), ("same_as_first", f"fill = {rows[0]['setting']}'s"))
    for ax, (key, name) in zip(axes, names):
        for i, r in enumerate(rows):
            x, y = r["positions_per_forward"], r[key]
            if x is not None and y is not None:
                ax.scatter(x, y, s=36, marker=markers[i % len(markers)], color=f"C{i % 10}", label=r["setting"])
        ax.set_xlabel("masked positions resolved per forward pass")
        ax.set_ylabel(name)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise DcoderError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)


def sweep(tasks: list[Task], filler: ModelFiller, points: list[dict], sandbox: Sandbox, header: dict,
          json_out: str | None, png: str | None, out=None, err=None) -> int:
    """Run ``tasks`` once per point; print the table, write the JSON and the PNG. 130 on Ctrl-C."""
    out, err = out or sys.stdout, err or sys.stderr
    base = filler.options.sampler
    settings = [sampler_for(base, p) for p in points]  # every point checked before the first runs
    rows, start, interrupted = [], time.perf_counter(), False
    first: dict[str, str] | None = None  # the first setting's fills, which the others are compared with
    for point, sampler in zip(points, settings):
        one = ModelFiller(filler.engine, replace(filler.options, sampler=sampler), filler.oracle_length)
        results, interrupted = run_file(tasks, one, 1, sandbox)
        figures = summarize(results, 1, by_kind=False)
        fills = {r.task.task_id: normalize(r.fills[0].text) for r in results}
        first = fills if first is None else first
        same = [fills[t] == first[t] for t in fills if t in first]
        figures["same_as_first"] = sum(same) / len(same) if same else None
        rows.append({"setting": label(point), **point, **figures})
        err.write(f"dcoder: {label(point)}: exact {figures['exact_match']:.3f}, "
                  f"{figures['positions_per_forward'] or 0:.2f} positions/pass ({elapsed(start)})\n")
        if interrupted:
            break
    out.write(table(rows) + "\n")
    out.flush()
    if json_out:
        write_json(json_out, {**header, "interrupted": interrupted, "sweep": rows})
    if png and rows:
        plot(rows, png, f"{header.get('model')}: {len(tasks)} tasks")
    return 130 if interrupted else 0
