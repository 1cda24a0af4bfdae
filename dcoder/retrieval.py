"""Similar code from the workspace: a bounded index of its source files in windows of lines, and
BM25 over identifiers to find the few windows most like the code around a hole (as the published
repository-level completion baselines do, RepoCoder and CrossCodeEval). Engine-independent:
the infill puts what it finds ahead of the file in the model's context (dcoder.engine.spans).

Bounds: files over ``max_file_bytes``, binary or undecodable files, symbolic links (so no loop)
and ignored paths (.gitignore, the excluded folders) are skipped; the walk stops at
``max_files`` files, ``max_bytes`` bytes or ``seconds`` seconds, whichever comes first, with a
log line. A file that vanishes or changes while it is read is skipped or read as it was.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dcoder.errors import DcoderError
from dcoder.syntax.languages import EXTENSIONS

log = logging.getLogger("dcoder.workspace")

WINDOW, STRIDE = 16, 8  # lines per indexed window, and lines between window starts
QUERY_BEFORE, QUERY_AFTER = 16, 4  # lines around the hole the query is made of
ALWAYS_SKIPPED = (".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache")
# A term in more than this share of the windows (and in many) says little of similarity and would
# cost a long loop: not scored. A query scores its rarest terms only, so a search of a full index
# stays within tens of thousands of steps.
COMMON, COMMON_MIN = 0.25, 1000
QUERY_TERMS, MAX_POSTING = 32, 4000
RELATIVE = 0.5  # a window scoring under this share of the best one is less use than the file's own text
_IDENT = re.compile(r"[^\W\d]\w*")
# Keywords of the common languages: every window has them, they make nothing alike.
_KEYWORDS = frozenset("""and as break case catch class const continue def default del elif else except export extends
false final finally fn for from func function if import in interface is let match new nil none not null or package
pass private protected public raise return self static struct switch this throw true try type var void while with
yield None True False""".split())
_LINE_COMMENT = {"python": "#", "ruby": "#", "bash": "#", "r": "#", "julia": "#", "lua": "--", "haskell": "--"}


@dataclass(frozen=True)
class IndexLimits:
    max_files: int = 5000
    max_file_bytes: int = 256_000
    max_bytes: int = 8_000_000  # of text; the index takes about ten times that in memory
    seconds: float = 3.0

    def __post_init__(self) -> None:
        if min(self.max_files, self.max_file_bytes, self.max_bytes) < 1 or not self.seconds > 0:
            raise DcoderError("workspace index limits must be positive")


@dataclass(frozen=True)
class Snippet:
    path: str  # relative to the workspace root, with /
    start_line: int  # 0-based
    text: str
    score: float


def context_text(snippets: tuple[Snippet, ...] | list[Snippet], language: str | None) -> str:
    """The snippets as the model sees them ahead of the file: each under a comment naming its file."""
    mark = _LINE_COMMENT.get(language or "", "//")
    return "".join(f"{mark} {s.path}\n{s.text.rstrip()}\n\n" for s in snippets)


# ---- .gitignore (the common subset: globs, **, a leading or trailing /, ! to re-include) --------

@dataclass(frozen=True)
class _Rule:
    base: str  # folder of the .gitignore, relative to the root ("" for the root)
    pattern: str
    negate: bool
    folder_only: bool
    anchored: bool


def _rules(folder: Path, base: str) -> list[_Rule]:
    try:
        lines = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        folder_only = line.endswith("/")
        line = line.strip("/") if folder_only else line
        anchored = "/" in line.lstrip("/") or line.startswith("/")
        out.append(_Rule(base, line.lstrip("/"), negate, folder_only, anchored))
    return out


def _match(rule: _Rule, rel: str, is_dir: bool) -> bool:
    if rule.folder_only and not is_dir:
        return False
    if rule.base:
        if not rel.startswith(rule.base + "/"):
            return False
        rel = rel[len(rule.base) + 1:]
    if not rule.anchored:
        return fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], rule.pattern)
    pattern = rule.pattern
    if pattern.startswith("**/"):
        return fnmatch.fnmatchcase(rel, pattern[3:]) or fnmatch.fnmatchcase(rel, pattern)
    return fnmatch.fnmatchcase(rel, pattern)


def _ignored(rules: list[_Rule], rel: str, is_dir: bool) -> bool:
    out = False
    for rule in rules:  # the last matching rule decides, as in git
        if _match(rule, rel, is_dir):
            out = not rule.negate
    return out


# ---- the index ----------------------------------------------------------------------------------

class WorkspaceIndex:
    """Windows of the workspace's source files, searchable by identifiers. Thread-safe: the
    language server builds it on one thread, stages edits on another and searches on a third."""

    def __init__(self, root: str | Path, exclude: tuple[str, ...] = (), limits: IndexLimits = IndexLimits()):
        self.root = Path(root).resolve()
        self.exclude = tuple(e.strip("/") for e in exclude if e.strip("/"))
        self.limits = limits
        self._lock = threading.Lock()
        self._files: dict[str, tuple[list[int], int]] = {}  # path -> its window ids, its size
        self._windows: list[tuple[str, int, str, Counter, int] | None] = []  # path, line, text, terms, length
        self._postings: dict[str, list[int]] = {}  # term -> windows that hold it, dead ones included
        self._df: Counter = Counter()  # term -> live windows that hold it
        self._live = 0
        self._total_length = 0
        self._bytes = 0
        self._staged: dict[str, str | None] = {}
        self.stopped: str | None = None  # why the last build stopped early, if it did

    # -- building --

    def _excluded(self, rel: str) -> bool:
        return any(rel == e or rel.startswith(e + "/") or fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], e)
                   for e in self.exclude)

    def build(self) -> int:
        """Walk the root within the limits; returns the files indexed."""
        start = time.monotonic()
        skipped: Counter = Counter()
        stack: list[tuple[Path, str, list[_Rule]]] = [(self.root, "", _rules(self.root, ""))]
        self.stopped = None
        indexed = 0
        while stack and self.stopped is None:
            folder, rel, rules = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                log.info("workspace: cannot list %s: %s", folder, exc.strerror or exc)
                continue
            for entry in entries:
                if time.monotonic() - start > self.limits.seconds:
                    self.stopped = f"time limit of {self.limits.seconds:g} s"
                    break
                child = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    if entry.is_symlink():
                        skipped["symbolic link"] += 1
                        continue
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    skipped["unreadable"] += 1
                    continue
                if entry.name in ALWAYS_SKIPPED or self._excluded(child) or _ignored(rules, child, is_dir):
                    continue
                if is_dir:
                    stack.append((Path(entry.path), child, rules + _rules(Path(entry.path), child)))
                    continue
                if Path(entry.name).suffix.lower() not in EXTENSIONS:
                    continue
                reason = self._read_and_add(Path(entry.path), child)
                if reason is not None:
                    skipped[reason] += 1
                    continue
                indexed += 1
                if indexed >= self.limits.max_files:
                    self.stopped = f"limit of {self.limits.max_files} files"
                    break
                if self._bytes >= self.limits.max_bytes:
                    self.stopped = f"limit of {self.limits.max_bytes} bytes"
                    break
        if self.stopped:
            log.info("workspace: index of %s stopped at the %s", self.root, self.stopped)
        if skipped:
            log.info("workspace: skipped %s", ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())))
        log.info("workspace: indexed %d files of %s in %.2f s", indexed, self.root, time.monotonic() - start)
        return indexed

    def _read(self, path: Path) -> tuple[str | None, str | None]:
        """A file's text, or None and the reason it is not indexed."""
        try:
            with open(path, "rb") as f:
                data = f.read(self.limits.max_file_bytes + 1)
        except OSError:
            return None, "unreadable"
        if len(data) > self.limits.max_file_bytes:
            return None, f"over {self.limits.max_file_bytes} bytes"
        if b"\0" in data[:8192]:
            return None, "binary"
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            return None, "not UTF-8"

    def _read_and_add(self, path: Path, rel: str) -> str | None:
        """Index one file; the reason it was skipped, or None."""
        text, reason = self._read(path)
        if text is None:
            return reason
        with self._lock:
            if rel not in self._files and rel not in self._staged:  # the editor's text wins over the disk's
                self._add(rel, text)
        return None

    def _add(self, rel: str, text: str) -> None:
        self._remove(rel)
        lines = text.splitlines()
        ids = []
        for first in range(0, max(len(lines) - WINDOW, 0) + 1, STRIDE):
            chunk = "\n".join(lines[first:first + WINDOW])
            terms = Counter(t for t in _IDENT.findall(chunk) if t not in _KEYWORDS)
            if not terms:
                continue
            n = sum(terms.values())
            wid = len(self._windows)
            self._windows.append((rel, first, chunk, terms, n))
            for term in terms:
                self._postings.setdefault(term, []).append(wid)
            self._df.update(terms.keys())
            ids.append(wid)
            self._live += 1
            self._total_length += n
        self._files[rel] = (ids, len(text))
        self._bytes += len(text)

    def _remove(self, rel: str) -> None:
        ids, size = self._files.pop(rel, ((), 0))
        self._bytes -= size
        for wid in ids:
            self._total_length -= self._windows[wid][4]
            self._df.subtract(self._windows[wid][3].keys())
            self._windows[wid] = None
            self._live -= 1
        dead = len(self._windows) - self._live
        if dead > 1000 and dead > self._live:  # edits left more dead windows than live ones: compact
            renumber, live = {}, []
            for wid, window in enumerate(self._windows):
                if window is not None:
                    renumber[wid] = len(live)
                    live.append(window)
            self._windows = live
            self._files = {path: ([renumber[w] for w in ids], size) for path, (ids, size) in self._files.items()}
            self._postings = {}
            for wid, window in enumerate(live):
                for term in window[3]:
                    self._postings.setdefault(term, []).append(wid)

    # -- edits from an editor --

    def relative(self, path: str | Path) -> str | None:
        """``path`` relative to the root, with /; None when it is outside it or excluded."""
        try:
            rel = Path(path).resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return None
        parts = rel.split("/")
        if any(p in ALWAYS_SKIPPED for p in parts) or self._excluded(rel):
            return None
        return rel

    def stage(self, path: str | Path, text: str | None) -> None:
        """Record a file's new text (None: it is gone); applied at the next search, so a burst of
        keystrokes costs one re-index."""
        rel = self.relative(path)
        if rel is None or Path(rel).suffix.lower() not in EXTENSIONS:
            return
        if text is not None and len(text) > self.limits.max_file_bytes:
            text = None  # over the size limit: not indexed
        with self._lock:
            if text is not None and rel not in self._files and len(self._files) >= self.limits.max_files:
                return
            self._staged[rel] = text

    def restage(self, path: str | Path) -> None:
        """Index the file as it is on disk again (an editor closed it, perhaps unsaved)."""
        self.stage(path, self._read(Path(path))[0])

    def _apply_staged(self) -> None:
        for rel, text in self._staged.items():
            if text is None:
                self._remove(rel)
            else:
                self._add(rel, text)
        self._staged.clear()

    # -- searching --

    @property
    def files(self) -> int:
        return len(self._files)

    def search(self, text: str, start: int, end: int | None = None, k: int = 2,
               skip: str | Path | None = None) -> list[Snippet]:
        """The ``k`` windows most like the lines around ``text[start:end]`` (BM25 over identifiers),
        not from the file ``skip``, at most one per place (overlapping windows of a file count once),
        none scoring under ``RELATIVE`` of the best."""
        end = start if end is None else end
        reach = 200 * QUERY_BEFORE  # characters: a long file is not split whole for a few lines
        before = text[max(0, start - reach):start].split("\n")[-QUERY_BEFORE:]
        after = text[end:end + reach].split("\n")[:QUERY_AFTER]
        query = set(_IDENT.findall("\n".join(before + after))) - _KEYWORDS
        skip_rel = self.relative(skip) if skip is not None else None
        with self._lock:
            self._apply_staged()
            if not self._live or not query:
                return []
            n, mean = self._live, self._total_length / self._live
            scores: dict[int, float] = {}
            terms = sorted((t for t in query if self._df[t] > 0), key=lambda t: self._df[t])[:QUERY_TERMS]
            for term in terms:
                posting, df = self._postings[term], self._df[term]
                if df > max(COMMON * n, COMMON_MIN) or len(posting) > MAX_POSTING:
                    continue
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                for wid in posting:
                    window = self._windows[wid]
                    if window is None or window[0] == skip_rel:
                        continue
                    tf, length = window[3][term], window[4]
                    scores[wid] = scores.get(wid, 0.0) + idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / mean))
            chosen: list[Snippet] = []
            best = max(scores.values(), default=0.0)
            for wid in sorted(scores, key=lambda w: -scores[w]):
                if scores[wid] < RELATIVE * best:
                    break
                path, first, chunk, _, _ = self._windows[wid]
                if any(s.path == path and abs(s.start_line - first) < WINDOW for s in chosen):
                    continue
                chosen.append(Snippet(path, first, chunk, scores[wid]))
                if len(chosen) == k:
                    break
        return chosen
