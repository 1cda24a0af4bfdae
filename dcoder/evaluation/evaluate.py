"""``dcoder eval``: infill real benchmark tasks with the engine and score the fills.

A task is a file cut in three: ``prompt``, the hidden middle (``canonical_solution``) and
``suffix``, in the HumanEval-Infilling JSONL format, optionally with ``test`` + ``entry_point``
and a ``kind``. The middle is filled through ``dcoder.infill.infill`` at the cursor
``len(prompt)``, exactly as an editor request would be. Every fill is scored by exact match and
by whether the filled file parses; a task with tests also runs them in the sandbox, giving the
unbiased pass@k estimator of Chen et al. (2021) averaged over tasks.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import sys
import time
from collections import deque
from concurrent.futures import Future, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from dcoder import syntax
from dcoder.errors import DcoderError
from dcoder.evaluation.execution import Outcome, Sandbox

REQUIRED = ("task_id", "prompt", "suffix", "canonical_solution")
PASS_KS = (1, 10, 100)


# ---- tasks ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    task_id: str
    prompt: str
    suffix: str
    canonical: str
    test: str | None = None
    entry_point: str | None = None
    kind: str | None = None
    language: str = "python"  # tree-sitter grammar name: the fill's syntax checks and the parse rate

    def program(self, fill: str) -> str:
        """What HumanEval runs: the filled file, its tests, and the call of ``check``."""
        return f"{self.prompt}{fill}{self.suffix}\n{self.test}\ncheck({self.entry_point})\n"


def _read_lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DcoderError(f"benchmark file not found: {path}") from None
    except OSError as exc:
        raise DcoderError(f"cannot read {path}: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DcoderError(f"{path} is not a valid gzip file ({exc})") from None
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise DcoderError(f"{path} is not UTF-8 text") from None


def _task(record: object, where: str, language: str) -> Task:
    if not isinstance(record, dict):
        raise DcoderError(f"{where}: a task must be a JSON object")
    for key in REQUIRED:
        if not isinstance(record.get(key), str):
            raise DcoderError(f"{where}: field {key!r} is missing or not a string")
    test, entry = record.get("test"), record.get("entry_point")
    if (test is None) != (entry is None):
        raise DcoderError(f"{where}: 'test' and 'entry_point' must come together")
    return Task(record["task_id"], record["prompt"], record["suffix"], record["canonical_solution"],
                test, entry, record.get("kind"), record.get("language", language))


def load_tasks(path: str | Path, kinds: set[str] | None = None, limit: int | None = None,
               language: str = "python") -> list[Task]:
    """Tasks of a JSONL or JSONL.gz file, keeping only ``kinds`` when given, at most ``limit``.

    A record's ``language`` field overrides ``language`` (the benchmarks here are all Python).
    """
    path = Path(path)
    tasks, seen_kinds = [], set()
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DcoderError(f"{path} line {n}: not valid JSON ({exc.msg})") from None
        task = _task(record, f"{path} line {n}", language)
        seen_kinds.add(task.kind)
        if kinds is None or task.kind in kinds:
            tasks.append(task)
        if limit is not None and len(tasks) >= limit:
            break
    if not tasks:
        if kinds is not None:
            there = ", ".join(sorted(k for k in seen_kinds if k)) or "none"
            raise DcoderError(f"{path} has no task of kind {', '.join(sorted(kinds))} (kinds there: {there})")
        raise DcoderError(f"{path} holds no task")
    return tasks


# ---- scores of one fill -----------------------------------------------------------------------

def normalize(code: str) -> str:
    """Trailing whitespace removed from every line and from the end."""
    return "\n".join(line.rstrip() for line in code.splitlines()).rstrip()


def exact_match(fill: str, canonical: str) -> bool:
    return normalize(fill) == normalize(canonical)


def parses(code: str, language: str = "python") -> bool:
    """Whether tree-sitter parses ``code`` without an ERROR or MISSING node."""
    doc = syntax.parse(code, language)
    if doc is None:
        raise DcoderError(f"no tree-sitter parser for {language}: cannot check that fills parse")
    return not doc.has_error


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k samples drawn from n, of which c pass, passes (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


# ---- filling ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fill:
    text: str
    forward_passes: int = 0
    tokens: int = 0  # tokens of the fill text (span padding not counted)
    seconds: float | None = None  # None: no model ran
    positions: int = 0  # masked positions the run resolved, span padding included


Filler = Callable[[Task, int], Fill]


def canonical_filler(task: Task, sample: int) -> Fill:
    """Feeds the reference middle back: a check of the harness itself."""
    return Fill(task.canonical)


def previous_line_filler(task: Task, sample: int) -> Fill:
    """A trivial baseline: repeat the line above. At a line start the whole line above (with its
    newline) is the fill; mid-line, the rest of the line above from the cursor's column."""
    lines = task.prompt.split("\n")
    column = len(lines[-1])
    above = lines[-2] if len(lines) > 1 else ""
    return Fill(above + "\n" if column == 0 else above[column:])


BASELINES = {"previous-line": previous_line_filler}


class ModelFiller:
    """Fills a task's middle through the same ``infill`` call an editor request makes."""

    def __init__(self, engine, options, oracle_length: bool = False, workspace=None) -> None:
        self.engine = engine
        self.options = options
        self.oracle_length = oracle_length
        self.workspace = workspace  # a dcoder.retrieval.WorkspaceIndex: each task gets its most similar code

    def _snippets(self, task: Task) -> tuple:
        """The workspace's code most like the lines around the hole, never from the task's own
        file (it holds the answer): ``task_id`` up to the kind names it, e.g. click/core.py."""
        own = self.workspace.root / task.task_id.rsplit("/", 2)[0]
        cursor = len(task.prompt)
        return tuple(self.workspace.search(task.prompt + task.suffix, cursor, skip=own))

    def __call__(self, task: Task, sample: int) -> Fill:
        from dcoder.infill import DeadlinePassed, infill

        start = time.perf_counter()  # the search of the workspace counts in the fill's time
        options = replace(self.options, language=task.language)
        if self.workspace is not None:
            options = replace(options, snippets=self._snippets(task))
        if sample:
            options = replace(options, sampler=replace(options.sampler, seed=options.sampler.seed + sample))
        if self.oracle_length:
            length = len(self.engine.tokenizer.encode(task.canonical))
            if length == 0:
                return Fill("")  # the oracle says the middle is empty: nothing to generate
            options = replace(options, exact_length=length)
        cursor = len(task.prompt)
        try:
            result = infill(self.engine, task.prompt + task.suffix, [(cursor, cursor)], options)
        except DeadlinePassed:
            return Fill("", seconds=time.perf_counter() - start)  # no fill in time: scored as an empty one
        seconds = time.perf_counter() - start
        text = result.edits[0].text
        return Fill(text, result.forward_passes, len(self.engine.tokenizer.encode(text)), seconds,
                    result.generated_tokens)


# ---- running a file ---------------------------------------------------------------------------

@dataclass(eq=False)
class TaskResult:
    task: Task
    fills: list[Fill]
    exact: list[bool]
    parsed: list[bool]
    runs: list[Future]  # one per fill when the task has tests, else empty

    def done(self) -> bool:
        return all(f.done() and not f.cancelled() for f in self.runs)

    def passed(self) -> int | None:
        if not self.runs:
            return None
        return sum(f.result().passed for f in self.runs)

    def outcomes(self) -> list[Outcome]:
        return [f.result() for f in self.runs]


def score_task(task: Task, fill: Filler, samples: int, sandbox: Sandbox) -> TaskResult:
    fills = [fill(task, i) for i in range(samples)]
    exact = [exact_match(f.text, task.canonical) for f in fills]
    parsed = [parses(task.prompt + f.text + task.suffix, task.language) for f in fills]
    runs = [sandbox.submit(task.program(f.text)) for f in fills] if task.test is not None else []
    return TaskResult(task, fills, exact, parsed, runs)


def run_file(tasks: list[Task], fill: Filler, samples: int, sandbox: Sandbox,
             on_done: Callable[[TaskResult], None] | None = None) -> tuple[list[TaskResult], bool]:
    """Score every task; returns the finished ones and whether Ctrl-C cut the run short.

    Tests run in the sandbox while the model fills the next tasks. On Ctrl-C, tests not yet
    started are dropped, those running are waited for, and only fully scored tasks are kept.
    """
    pending: deque[TaskResult] = deque()
    finished: list[TaskResult] = []

    def collect(block: bool) -> None:
        while pending and (block or pending[0].done()):
            wait(pending[0].runs)
            if not pending[0].done():
                return  # its tests were cancelled
            finished.append(pending.popleft())
            if on_done:
                on_done(finished[-1])

    try:
        for task in tasks:
            pending.append(score_task(task, fill, samples, sandbox))
            collect(block=False)
        collect(block=True)
        return finished, False
    except KeyboardInterrupt:
        runs = [f for r in pending for f in r.runs]
        for f in runs:
            f.cancel()
        wait([f for f in runs if not f.cancelled()])
        finished.extend(r for r in pending if r.done())
        return finished, True


# ---- figures ----------------------------------------------------------------------------------

def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(results: list[TaskResult], samples: int, by_kind: bool = True) -> dict:
    """The figures of a set of tasks; exact match and parse rate count every sample."""
    tested = [r for r in results if r.runs]
    out: dict = {"tasks": len(results), "tested": len(tested)}
    for k in sorted({k for k in PASS_KS if k <= samples} | {1}):
        values = [pass_at_k(len(r.runs), r.passed(), k) for r in tested]
        out[f"pass@{k}"] = _mean(values)
    out["exact_match"] = _mean([x for r in results for x in r.exact])
    out["parse_rate"] = _mean([x for r in results for x in r.parsed])
    ran = [f for r in results for f in r.fills if f.seconds is not None]
    tokens = sum(f.tokens for f in ran)
    passes, positions = sum(f.forward_passes for f in ran), sum(f.positions for f in ran)
    out["forward_passes_per_token"] = passes / tokens if tokens else None
    out["tokens_per_forward"] = tokens / passes if passes else None
    # what the sampler resolves in parallel: every masked position, padding included
    out["positions_per_forward"] = positions / passes if passes else None
    out["median_latency_s"] = statistics.median(f.seconds for f in ran) if ran else None
    out["ms_per_task"] = 1000 * sum(f.seconds for f in ran) / len(results) if ran else None
    if by_kind:
        kinds = sorted({r.task.kind for r in results if r.task.kind is not None})
        out["by_kind"] = {k: summarize([r for r in results if r.task.kind == k], samples, False) for k in kinds}
    return out


def failures(results: list[TaskResult], limit: int = 3) -> list[str]:
    """A few failing tests, so a harness problem is visible rather than a bare figure."""
    lines = []
    for r in results:
        for outcome in r.outcomes() if r.runs else []:
            if not outcome.passed and len(lines) < limit:
                lines.append(f"{r.task.task_id}: {outcome.status} {outcome.detail}".rstrip())
    return lines


# ---- output -----------------------------------------------------------------------------------

class ProgressBar:
    """One redrawn line on a terminal, with running pass@1 and exact match; a line per tenth otherwise."""

    def __init__(self, label: str, total: int, stream=None) -> None:
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done = self.tested = self.exact = self.samples = 0
        self.passed = 0.0
        self.shown = -1

    def add(self, result: TaskResult) -> None:
        self.done += 1
        self.samples += len(result.exact)
        self.exact += sum(result.exact)
        if result.runs:
            self.tested += 1
            self.passed += result.passed() / len(result.runs)
        tenth = self.done * 10 // max(self.total, 1)
        if self.tty or tenth != self.shown:
            self.shown = tenth
            self.draw()

    def draw(self) -> None:
        width = 24
        filled = self.done * width // max(self.total, 1)
        line = f"{self.label} [{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total}"
        if self.tested:
            line += f"  pass@1 {self.passed / self.tested:.3f}"
        line += f"  exact {self.exact / max(self.samples, 1):.3f}"
        self.stream.write(("\r\x1b[K" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


COLUMNS = (("tasks", "tasks", None), ("pass@1", "pass@1", 3), ("exact", "exact_match", 3),
           ("parses", "parse_rate", 3), ("passes/token", "forward_passes_per_token", 2),
           ("median s", "median_latency_s", 3))


def labels(paths: list[str]) -> list[str]:
    """File names when they tell the files apart, else the paths as given."""
    names = [Path(p).name for p in paths]
    return names if len(set(names)) == len(names) else paths


def table(results: dict[str, dict]) -> str:
    """The figures of every file (and of each kind inside it) as aligned text."""
    rows = []
    for name, fig in zip(labels(list(results)), results.values()):
        rows.append((name, fig))
        rows.extend((f"  {kind}", kf) for kind, kf in fig.get("by_kind", {}).items())
    extra = sorted({k for _, f in rows for k in f if k.startswith("pass@") and k != "pass@1"},
                   key=lambda k: int(k[5:]))
    columns = list(COLUMNS[:2]) + [(k, k, 3) for k in extra] + list(COLUMNS[2:])
    head = [""] + [c[0] for c in columns]
    body = [[label] + [str(f[key]) if digits is None else _fmt(f.get(key), digits) for _, key, digits in columns]
            for label, f in rows]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in [head] + body]
    return "\n".join(lines)


def write_json(path: str, report: dict) -> None:
    """Written to a temporary name and renamed, so OUT is never left half-written."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DcoderError(f"cannot write {path}: {exc.strerror}") from None


# ---- the whole run ----------------------------------------------------------------------------

def evaluate(files: dict[str, list[Task]], fill: Filler, samples: int, sandbox: Sandbox,
             stream=None) -> tuple[dict[str, dict], bool]:
    """Figures per file, in order; stops after the file Ctrl-C interrupted."""
    out: dict[str, dict] = {}
    for name, label, tasks in zip(files, labels(list(files)), files.values()):
        bar = ProgressBar(label, len(tasks), stream)
        results, interrupted = run_file(tasks, fill, samples, sandbox, bar.add)
        bar.close()
        out[name] = summarize(results, samples)
        if interrupted:
            out[name]["interrupted"] = True
            return out, True
        for line in failures(results):
            (stream or sys.stderr).write(f"  failed: {line}\n")
    return out, False


def check_samples(samples: int, temperature: float) -> None:
    if samples < 1:
        raise DcoderError("--samples must be at least 1")
    if samples > 1 and temperature <= 0:
        raise DcoderError("--samples above 1 needs --temperature > 0 (greedy decoding gives identical samples)")


def elapsed(start: float) -> str:
    s = time.perf_counter() - start
    return f"{int(s // 60)} min {s % 60:.1f} s" if s >= 60 else f"{s:.1f} s"



def run(files: dict[str, list[Task]], fill: Filler, samples: int, sandbox: Sandbox, header: dict,
        json_out: str | None = None, out=None, err=None) -> int:
    """Evaluate, print the table (stdout) and write ``json_out``; 130 when Ctrl-C cut it short."""
    out, err = out or sys.stdout, err or sys.stderr
    start = time.perf_counter()
    results, interrupted = evaluate(files, fill, samples, sandbox, err)
    err.write(f"dcoder: evaluated in {elapsed(start)}" + (" (interrupted: partial figures)\n" if interrupted else "\n"))
    out.write(table(results) + "\n")
    out.flush()
    if json_out:
        write_json(json_out, {**header, "interrupted": interrupted, "results": results})
    return 130 if interrupted else 0
