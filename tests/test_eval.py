"""The evaluation harness: loading, scoring, pass@k, canonical mode on real data, `dcoder eval` end to end."""

from __future__ import annotations

import gzip
import io
import json
from math import comb
from pathlib import Path

import pytest

from dcoder.cli import main
from dcoder.errors import DcoderError
from dcoder.evaluation.evaluate import (
    Fill,
    Task,
    canonical_filler,
    exact_match,
    load_tasks,
    parses,
    pass_at_k,
    previous_line_filler,
    run,
    run_file,
    summarize,
)
from dcoder.evaluation.execution import Limits, Sandbox, isolation

BENCHMARKS = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"
HUMANEVAL = ("SingleLineInfilling", "MultiLineInfilling", "RandomSpanInfilling", "RandomSpanInfillingLight")
needs_benchmarks = pytest.mark.skipif(not BENCHMARKS.is_dir(), reason=f"benchmark data not found at {BENCHMARKS}")

PROMPT = "def double(x):\n"
SUFFIX = "\n\ndef triple(x):\n    return 3 * x\n"
TEST = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-1) == -2\n"
CANONICAL = "    return 2 * x\n"
FILLS = {
    "correct": "    return x + x\n",
    "wrong": "    return x * x\n",
    "crash": "    return x / 0\n",
    "loop": "    while True:\n        pass\n",
    "writes": "    open('scratch.txt', 'w').write(str(x))\n    return 2 * x\n",
    "escapes": "    open('/tmp/../tmp/dcoder-eval-escape.txt', 'w').write('x')\n    return 2 * x\n",
}


def handcrafted() -> list[Task]:
    return [Task(name, PROMPT, SUFFIX, CANONICAL, TEST, "double", "handmade") for name in FILLS]


def by_name(task: Task, sample: int) -> Fill:
    return Fill(FILLS[task.task_id])


def write_jsonl(path: Path, records: list[dict], gz: bool = False) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ---- pass@k ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n, c, k, expected", [
    (1, 1, 1, 1.0), (1, 0, 1, 0.0), (10, 3, 1, 0.3), (10, 3, 5, 1 - 21 / 252), (10, 0, 10, 0.0),
    (5, 4, 2, 1.0), (20, 1, 10, 0.5),
])
def test_pass_at_k_known_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_matches_the_combinatorial_formula():
    for n, c, k in [(200, 10, 10), (200, 37, 100), (50, 49, 1), (100, 5, 20)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


# ---- scores of one fill --------------------------------------------------------------------------

def test_exact_match_normalises_trailing_whitespace_only():
    assert exact_match("    return x  \n", "    return x\n")
    assert exact_match("a = 1\nb = 2", "a = 1   \nb = 2\n\n")
    assert not exact_match("return x\n", "    return x\n")
    assert not exact_match("    return y\n", "    return x\n")


def test_parses():
    assert parses(PROMPT + CANONICAL + SUFFIX)
    assert not parses(PROMPT + "    return (2 * x\n" + SUFFIX)


# ---- loading -----------------------------------------------------------------------------------

def test_load_jsonl_and_gz_with_kinds_and_limit(tmp_path):
    records = [{"task_id": f"t{i}", "prompt": "a", "suffix": "b", "canonical_solution": "c",
                "kind": "node" if i % 2 else "single-line"} for i in range(6)]
    plain = write_jsonl(tmp_path / "t.jsonl", records)
    packed = write_jsonl(tmp_path / "t.jsonl.gz", records, gz=True)
    assert [t.task_id for t in load_tasks(plain)] == [f"t{i}" for i in range(6)]
    assert [t.task_id for t in load_tasks(packed, {"node"})] == ["t1", "t3", "t5"]
    assert [t.task_id for t in load_tasks(packed, {"node"}, limit=2)] == ["t1", "t3"]
    with pytest.raises(DcoderError, match="kinds there: node, single-line"):
        load_tasks(plain, {"random-span"})


@pytest.mark.parametrize("content, message", [
    ('{"task_id": "a", "prompt": "", "suffix": ""}\n', "line 1: field 'canonical_solution' is missing"),
    ('{"task_id": "a", "prompt": "", "suffix": "", "canonical_solution": "", "test": "x"}\n',
     "'test' and 'entry_point' must come together"),
    ('\n{"task_id": "a",\n', "line 2: not valid JSON"),
    ("", "holds no task"),
])
def test_load_errors_are_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DcoderError, match=message):
        load_tasks(path)


def test_missing_file_is_a_user_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope.jsonl"), "--canonical"]) == 2
    assert capsys.readouterr().err.strip() == f"dcoder: error: benchmark file not found: {tmp_path / 'nope.jsonl'}"


def test_samples_need_a_temperature(tmp_path, capsys):
    path = write_jsonl(tmp_path / "t.jsonl", [{"task_id": "a", "prompt": "", "suffix": "", "canonical_solution": "x"}])
    assert main(["eval", str(path), "--canonical", "--samples", "4"]) == 2
    assert "--samples above 1 needs --temperature > 0" in capsys.readouterr().err


# ---- scoring handcrafted tasks ---------------------------------------------------------------------

def test_scoring_of_correct_wrong_crashing_looping_and_file_writing_fills():
    escape = Path("/tmp/dcoder-eval-escape.txt")
    escape.unlink(missing_ok=True)
    with Sandbox(Limits(timeout=1.0)) as sandbox:
        results, interrupted = run_file(handcrafted(), by_name, 1, sandbox)
    assert not interrupted
    outcome = {r.task.task_id: r.outcomes()[0] for r in results}
    assert {name: o.status for name, o in outcome.items()} == {
        "correct": "passed", "wrong": "failed", "crash": "failed", "loop": "timeout",
        "writes": "passed", "escapes": "failed"}
    assert outcome["crash"].detail.startswith("ZeroDivisionError")
    assert "PermissionError" in outcome["escapes"].detail
    assert not escape.exists()
    assert not Path("scratch.txt").exists()

    figures = summarize(results, 1)
    assert figures["tasks"] == figures["tested"] == 6
    assert figures["pass@1"] == pytest.approx(2 / 6)
    assert figures["exact_match"] == 0.0  # none is the canonical text
    assert figures["parse_rate"] == 1.0
    assert figures["forward_passes_per_token"] is None  # no model ran
    assert figures["by_kind"]["handmade"]["pass@1"] == pytest.approx(2 / 6)


def test_several_samples_give_unbiased_pass_at_k():
    tasks = handcrafted()[:2]  # "correct" and "wrong"
    ten = Task("ten", PROMPT, SUFFIX, CANONICAL, TEST, "double")

    def alternate(task: Task, sample: int) -> Fill:
        if task.task_id == "ten":
            return Fill(CANONICAL if sample < 3 else FILLS["wrong"])  # 3 of 10 pass
        return by_name(task, sample)

    with Sandbox(Limits(timeout=2.0)) as sandbox:
        results, _ = run_file(tasks + [ten], alternate, 10, sandbox)
    figures = summarize(results, 10)
    assert [r.passed() for r in results] == [10, 0, 3]
    assert figures["pass@1"] == pytest.approx((1 + 0 + 0.3) / 3)
    assert figures["pass@10"] == pytest.approx((1 + 0 + 1) / 3)
    assert figures["exact_match"] == pytest.approx(3 / 30)


def test_ctrl_c_keeps_what_was_measured(tmp_path):
    def interrupted_at_third(task: Task, sample: int) -> Fill:
        if task.task_id == "crash":
            raise KeyboardInterrupt
        return by_name(task, sample)

    out, err = io.StringIO(), io.StringIO()
    report = tmp_path / "partial.json"
    with Sandbox(Limits(timeout=1.0)) as sandbox:
        code = run({"hand.jsonl": handcrafted()}, interrupted_at_third, 1, sandbox, {"model": "m"}, str(report), out, err)
    assert code == 130
    saved = json.loads(report.read_text())
    assert saved["interrupted"] is True
    assert saved["results"]["hand.jsonl"]["tasks"] == 2
    assert saved["results"]["hand.jsonl"]["pass@1"] == 0.5
    assert "hand.jsonl" in out.getvalue() and "interrupted" in err.getvalue()


# ---- real benchmark data -------------------------------------------------------------------------

@needs_benchmarks
def test_canonical_mode_on_a_slice_of_every_real_file():
    files = {name: load_tasks(BENCHMARKS / "humaneval-infilling" / f"HumanEval-{name}.jsonl.gz", limit=6)
             for name in HUMANEVAL}
    files["realcode"] = load_tasks(BENCHMARKS / "realcode-dev" / "tasks.jsonl.gz", {"node", "multi-line"}, limit=6)
    with Sandbox() as sandbox:
        for name, tasks in files.items():
            results, _ = run_file(tasks, canonical_filler, 1, sandbox)
            figures = summarize(results, 1)
            assert figures["exact_match"] == 1.0 and figures["parse_rate"] == 1.0, name
            assert figures["pass@1"] == (None if name == "realcode" else 1.0), name


@needs_benchmarks
def test_dcoder_eval_end_to_end_with_a_tiny_model(dream_ckpt, tmp_path, capsys):
    humaneval = BENCHMARKS / "humaneval-infilling" / "HumanEval-SingleLineInfilling.jsonl.gz"
    realcode = BENCHMARKS / "realcode-dev" / "tasks.jsonl.gz"
    out = tmp_path / "eval.json"
    code = main(["eval", str(humaneval), str(realcode), "--model", str(dream_ckpt), "--limit", "3",
                 "--kinds", "single-line,node", "--steps", "4", "--json", str(out)])
    assert code == 2  # HumanEval tasks have no kind
    assert "has no task of kind node, single-line" in capsys.readouterr().err

    code = main(["eval", str(humaneval), "--model", str(dream_ckpt), "--limit", "3", "--steps", "4",
                 "--json", str(out)])
    realcode_code = main(["eval", str(realcode), "--model", str(dream_ckpt), "--limit", "2", "--kinds", "node",
                          "--oracle-length", "--samples", "2", "--temperature", "1.0", "--steps", "4",
                          "--json", str(tmp_path / "realcode.json")])
    assert code == realcode_code == 0
    table = capsys.readouterr().out
    assert "HumanEval-SingleLineInfilling.jsonl.gz" in table and "pass@1" in table

    report = json.loads(out.read_text())
    assert set(report) == {"model", "options", "interrupted", "results"}
    assert "dream" in report["model"] and report["options"]["sampler"]["steps"] == 4
    figures = report["results"][str(humaneval)]
    assert figures["tasks"] == figures["tested"] == 3
    for key in ("pass@1", "exact_match", "parse_rate"):
        assert 0.0 <= figures[key] <= 1.0
    assert figures["forward_passes_per_token"] > 0 and figures["median_latency_s"] > 0
    assert figures["by_kind"] == {}

    report = json.loads((tmp_path / "realcode.json").read_text())
    figures = report["results"][str(realcode)]
    assert report["options"]["oracle_length"] is True and report["options"]["samples"] == 2
    assert figures["tasks"] == 2 and figures["pass@1"] is None
    assert set(figures["by_kind"]) == {"node"} and figures["by_kind"]["node"]["tasks"] == 2


def test_previous_line_baseline():
    whole = Task("t", "def f(x):\n    y = x + 1\n", "    return y\n", "    y = y * 2\n")
    assert previous_line_filler(whole, 0).text == "    y = x + 1\n"
    mid = Task("t", "a = foo(1, 2)\nb = bar(", ")\n", "3, 4")
    assert previous_line_filler(mid, 0).text == "1, 2)"
    assert previous_line_filler(Task("t", "", "x\n", "y"), 0).text == "\n"


def test_baseline_from_the_cli(tmp_path, capsys):
    record = {"task_id": "a", "prompt": "x = 1\n", "suffix": "", "canonical_solution": "x = 1\n"}
    path = write_jsonl(tmp_path / "t.jsonl", [record])
    assert main(["eval", str(path), "--baseline", "previous-line", "--json", str(tmp_path / "o.json")]) == 0
    report = json.loads((tmp_path / "o.json").read_text())
    assert report["model"] == "baseline:previous-line"
    assert report["results"][str(path)]["exact_match"] == 1.0


def test_a_fill_that_exits_before_the_checks_does_not_pass(tmp_path, capsys):
    """``os._exit(0)`` in the function under test ends the program with 0 before a check ran."""
    path = write_jsonl(tmp_path / "t.jsonl", [{
        "task_id": "exits", "prompt": "def add(a, b):\n", "suffix": "",
        "canonical_solution": "    import os\n    os._exit(0)\n",
        "test": "def check(f):\n    assert f(1, 2) == 3\n", "entry_point": "add"}])
    out = tmp_path / "figures.json"
    assert main(["eval", str(path), "--canonical", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["results"][str(path)]["pass@1"] == 0.0
    assert report["options"]["sandbox"] == list(isolation())
    assert "tests run in a sandbox with" in capsys.readouterr().err
