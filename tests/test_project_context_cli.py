"""`--scope-bias`, `--context-from` and `dcoder eval --workspace` through the real command with a
tiny checkpoint; the evaluation never shows a task its own file."""

from __future__ import annotations

import json

from test_cli import dcoder, one_line_error

from dcoder.evaluation.evaluate import ModelFiller, Task
from dcoder.retrieval import WorkspaceIndex

ANSWER = "    return sum(value * weight for value, weight in zip(values, weights))\n"
PROMPT = "def weighted_total(values, weights):\n"
SUFFIX = "\n\ndef other():\n    pass\n"
SIMILAR = "def weighted_mean(values, weights):\n    total = sum(value * weight for value, weight in zip(values, weights))\n"


def project(tmp_path):
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text(PROMPT + ANSWER + SUFFIX)
    (root / "pkg" / "stats.py").write_text(SIMILAR)
    return root


def test_infill_and_refine_with_workspace_context_and_scope_bias(dream_ckpt, tmp_path):
    root = project(tmp_path)
    target = root / "pkg" / "mod.py"
    r = dcoder("infill", target, "--at", "2:5", "--model", dream_ckpt, "--steps", "4", "--max-tokens", "6",
               "--context-from", root, "--context-exclude", "vendor", "--scope-bias", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["edits"][0]["start"] == {"line": 2, "column": 5}
    r = dcoder("refine", target, "--range", "2:5-2:11", "--model", dream_ckpt, "--steps", "2",
               "--context-from", root, "--scope-bias", "0")
    assert r.returncode == 0, r.stderr


def test_bad_scope_bias_or_context_folder_is_one_line(dream_ckpt, tmp_path):
    target = project(tmp_path) / "pkg" / "mod.py"
    for value in ("10.5", "-1", "nan"):
        one_line_error(dcoder("infill", target, "--at", "2:5", "--model", dream_ckpt, "--scope-bias", value),
                       "--scope-bias must be from 0 to 10")
    one_line_error(dcoder("infill", target, "--at", "2:5", "--model", dream_ckpt, "--context-from", tmp_path / "no"),
                   "not a folder")


def test_an_evaluation_task_never_sees_its_own_file(tmp_path):
    root = project(tmp_path)
    index = WorkspaceIndex(root)
    index.build()
    task = Task("pkg/mod.py/single-line/0", PROMPT, SUFFIX, ANSWER)
    snippets = ModelFiller(None, None, workspace=index)._snippets(task)
    assert [s.path for s in snippets] == ["pkg/stats.py"]


def test_eval_with_a_workspace_records_it(dream_ckpt, tmp_path):
    root = project(tmp_path)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"task_id": "pkg/mod.py/single-line/0", "kind": "single-line", "prompt": PROMPT,
                                 "suffix": SUFFIX, "canonical_solution": ANSWER}) + "\n")
    out = tmp_path / "out.json"
    r = dcoder("eval", tasks, "--model", dream_ckpt, "--steps", "2", "--max-tokens", "4", "--workspace", root,
               "--scope-bias", "1.5", "--json", out)
    assert r.returncode == 0, r.stderr
    options = json.loads(out.read_text())["options"]
    assert options["scope_bias"] == 1.5 and options["workspace"] == str(root) and options["workspace_files"] == 2
