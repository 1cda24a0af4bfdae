"""The `regions` command and `infill --region`, through the real `python -m dcoder`."""

import json
import subprocess
import sys

import pytest
from regions_support import CODE, at


def dcoder(*args):
    return subprocess.run([sys.executable, "-m", "dcoder", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture()
def code_file(tmp_path):
    p = tmp_path / "code.py"
    p.write_text(CODE, encoding="utf-8")
    return p


def test_cli_regions_lists_innermost_first(code_file):
    pos = at(CODE, "v > 0")
    line, col = CODE[:pos].count("\n") + 1, pos - CODE.rfind("\n", 0, pos)  # in "return [v * y ...]"
    r = dcoder("regions", code_file, "--at", f"{line}:{col}")
    assert r.returncode == 0, r.stderr
    rows = [ln.split() for ln in r.stdout.splitlines()]
    assert rows[0] == ["condition", f"{line}:{col}-{line}:{col + 5}", "comparison_operator"]
    assert [row[0] for row in rows[:3]] == ["condition", "comprehension", "return.value"]
    j = dcoder("regions", code_file, "--at", f"{line}:{col}", "--json")
    out = json.loads(j.stdout)
    assert out["language"] == "python" and out["position"] == {"line": line, "column": col}
    first = out["regions"][0]
    assert CODE[first["start_offset"]:first["end_offset"]] == "v > 0"
    assert [x["name"] for x in out["regions"]] == [row[0] for row in rows]


def test_cli_regions_unknown_language_is_a_note(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text(CODE, encoding="utf-8")
    r = dcoder("regions", f, "--at", "1:1")
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr.startswith("dcoder: note: ") and r.stderr.count("\n") == 1
    r = dcoder("regions", f, "--at", "1:3", "--language", "python")
    assert r.stdout.split()[0] == "import"


def test_cli_bad_region_is_a_one_line_error(code_file):
    for args, says in [(("--region", "function.body", "--at", "7:9"), "unknown region 'function.body'"),
                       (("--region", "function.inner"), "--region needs --at"),
                       (("--region", "decorator", "--at", "1:1"), "no decorator region at 1:1")]:
        r = dcoder("infill", code_file, *args, "--model", "/nonexistent")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
        assert r.stderr.startswith("dcoder: error: ")


def test_cli_infill_region_end_to_end(dream_ckpt, tmp_path):
    f = tmp_path / "add.py"
    text = "def add(a, b):\n    total = a + b\n    return total\n\n\nprint(add(1, 2))\n"
    f.write_text(text, encoding="utf-8")
    r = dcoder("infill", f, "--region", "function.inner", "--at", "3:8", "--model", dream_ckpt, "--json",
               "--steps", "4", "--max-tokens", "8", "--candidates", "2", "--repair", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (edit,) = out["edits"]
    assert text[edit["start_offset"]:edit["end_offset"]] == "total = a + b\n    return total"
    assert out["parses"] in (True, False) and out["repairs"] in (0, 1) and out["searched"] in (True, False)
    assert ("dcoder: warning: the fill does not parse" in r.stderr) == (out["parses"] is False)


def test_cli_in_place_refuses_a_fill_that_breaks_the_file(dream_ckpt, tmp_path):
    f = tmp_path / "add.py"
    text = "def add(a, b):\n    return a + b\n"
    f.write_text(text, encoding="utf-8")
    args = ("infill", f, "--region", "function.inner", "--at", "2:5", "--model", dream_ckpt, "--steps", "4",
            "--max-tokens", "16", "--repair", "0", "--search-tokens", "0")
    r = dcoder(*args, "--in-place")  # the random checkpoint's fill here is not Python
    assert r.returncode == 2 and "left unchanged" in r.stderr and f.read_text() == text
    r = dcoder(*args, "--in-place", "--allow-broken")
    assert r.returncode == 0 and "dcoder: warning:" in r.stderr and f.read_text() != text
