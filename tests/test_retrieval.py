"""The workspace index (dcoder.retrieval): it finds the similar code, and stays within its bounds
on the workspaces that break naive indexers (many files, symbolic link loops, binary files)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from dcoder.engine.engine import BUILTIN_MODEL
from dcoder.engine.spans import PREAMBLE_SHARE, Span, build_layout
from dcoder.engine.tokenizer import Tokenizer
from dcoder.config import SpecialTokens
from dcoder.retrieval import IndexLimits, WorkspaceIndex, context_text

SIMILAR = '''def render_table(rows, widths):
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append(" | ".join(cells))
    return "\\n".join(lines)
'''
OTHER = '''def connect(host, port, timeout):
    sock = socket.create_connection((host, port), timeout)
    sock.settimeout(timeout)
    return sock
'''
CURRENT = '''def print_rows(rows, widths):
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        '''


def workspace(tmp_path, files: dict[str, str | bytes]):
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return tmp_path


def test_search_finds_the_similar_window_and_never_the_file_itself(tmp_path):
    root = workspace(tmp_path, {"table.py": SIMILAR, "net.py": OTHER, "pkg/current.py": CURRENT + "\n"})
    index = WorkspaceIndex(root)
    assert index.build() == 3
    found = index.search(CURRENT, len(CURRENT), skip=root / "pkg" / "current.py")
    assert [s.path for s in found] == ["table.py"]
    assert "cell.ljust(width)" in found[0].text
    assert context_text(found, "python").startswith("# table.py\ndef render_table")
    for _ in range(3):  # an editor re-sends the file: its old windows no longer count
        index.stage(root / "pkg" / "current.py", CURRENT)
        assert index.search(CURRENT, len(CURRENT), skip=root / "pkg" / "current.py") == found


def test_gitignore_excluded_folders_and_edits(tmp_path):
    root = workspace(tmp_path, {".gitignore": "build/\n*.gen.py\n!keep.gen.py\n/top.py\n",
                                "build/table.py": SIMILAR, "x.gen.py": SIMILAR, "keep.gen.py": OTHER,
                                "top.py": SIMILAR, "sub/top.py": OTHER, "vendor/table.py": SIMILAR,
                                "node_modules/table.py": SIMILAR})
    index = WorkspaceIndex(root, exclude=("vendor",))
    index.build()
    assert sorted(p for p in index._files) == ["keep.gen.py", "sub/top.py"]

    def found():
        return [s.path for s in index.search(CURRENT, len(CURRENT))]

    assert found() == []
    index.stage(root / "sub" / "edited.py", SIMILAR)  # an editor's unsaved text counts
    assert found() == ["sub/edited.py"]
    index.stage(root / "sub" / "edited.py", None)
    index.stage(root / "vendor" / "more.py", SIMILAR)  # excluded, edited or not
    assert found() == []


def test_binary_undecodable_huge_and_linked_files_are_skipped(tmp_path):
    root = workspace(tmp_path, {"blob.py": b"\x00\x01" * 100, "latin.py": "caf\xe9 = 1".encode("latin-1"),
                                "huge.py": "x = 1\n" * 50_000, "table.py": SIMILAR})
    os.symlink(root, root / "loop")  # a folder that contains itself
    os.symlink(root / "table.py", root / "alias.py")
    (root / "deep").mkdir()
    os.symlink(root / "deep", root / "deep" / "again")
    index = WorkspaceIndex(root, limits=IndexLimits(max_file_bytes=100_000))
    start = time.monotonic()
    assert index.build() == 1
    assert time.monotonic() - start < 10  # a hang guard, not a speed check
    assert list(index._files) == ["table.py"]


def test_a_workspace_of_100000_files_stops_at_the_limits(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(100_000):
        with open(folder / f"m{i}.py", "w") as f:
            f.write(f"value_{i} = {i}\n")
    index = WorkspaceIndex(tmp_path, limits=IndexLimits(max_files=2000))
    assert index.build() == 2000
    assert index.stopped == "limit of 2000 files"
    slow = WorkspaceIndex(tmp_path, limits=IndexLimits(max_files=200_000, seconds=0.2))
    start = time.monotonic()
    slow.build()
    assert slow.stopped == "time limit of 0.2 s" and time.monotonic() - start < 10
    index.stage(tmp_path / "new.py", SIMILAR)  # full: a new file is not taken in
    assert index.search(CURRENT, len(CURRENT)) == []


def test_a_folder_that_cannot_be_listed_or_a_missing_root_is_no_crash(tmp_path):
    assert WorkspaceIndex(tmp_path / "gone").build() == 0
    assert WorkspaceIndex(tmp_path).search("", 0) == []


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(BUILTIN_MODEL / "tokenizer.json")


def test_the_layout_puts_snippets_ahead_of_the_file_within_the_context(tokenizer):
    tokens = SpecialTokens(mask=tokenizer.token_id("<|mask|>"), span_pad=tokenizer.token_id("<|dlm_pad|>"),
                           eos=tokenizer.token_id("<|endoftext|>"))
    text = "x = 1\n" + "y = 2\n" * 400
    preamble = "# other.py\n" + "z = 3\n" * 400
    layout = build_layout(text, [Span(6, 6, 8)], tokenizer, tokens, 512, None, preamble)
    ids = [int(i) for i in layout.ids]
    assert len(ids) <= 512
    assert tokenizer.decode(ids[:6]).startswith("# other.py")
    a, b = layout.slots[0]
    assert tokenizer.decode(ids[a - 4:a]).endswith("x = 1\n")  # the file's own text right before the hole
    pre = tokenizer.encode(preamble)
    assert ids[:int((512 - 8) * PREAMBLE_SHARE)] == pre[:int((512 - 8) * PREAMBLE_SHARE)]
    assert np.all(layout.ids[a:b] == tokens.mask)
    short = build_layout("x = 1\n", [Span(6, 6, 8)], tokenizer, tokens, 512, None, preamble)
    assert len(short.ids) == 512  # a short file leaves the preamble the rest of the context
