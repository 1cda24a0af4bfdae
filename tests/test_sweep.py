"""dcoder eval --sweep: one run over a grid of decoding settings, a row of figures each, JSON and a PNG."""

from __future__ import annotations

import json

import pytest

from dcoder.cli import main
from dcoder.errors import DcoderError
from dcoder.evaluation.sweep import parse_grid

PROMPT = "def double(x):\n"
SUFFIX = "\n\ndef triple(x):\n    return 3 * x\n"


@pytest.fixture()
def tasks(tmp_path):
    path = tmp_path / "tasks.jsonl"
    rows = [{"task_id": f"t/{i}", "prompt": PROMPT * (i + 1), "suffix": SUFFIX, "canonical_solution": "    return 2 * x",
             "kind": "single-line"} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_grid_is_each_groups_combinations_in_order():
    points = parse_grid(["steps=8,16 alg=entropy,maskgit_plus", "threshold=none,0.9", "policy=verify", "steps=8 alg=entropy"])
    assert points == [{"steps": 8, "alg": "entropy"}, {"steps": 8, "alg": "maskgit_plus"},
                      {"steps": 16, "alg": "entropy"}, {"steps": 16, "alg": "maskgit_plus"},
                      {"threshold": None}, {"threshold": 0.9}, {"policy": "verify"}]


@pytest.mark.parametrize("group, needle", [("steps", "KEY=V1,V2"), ("temperature=1", "KEY=V1,V2"),
                                           ("steps=x", "not a int"), ("policy=nope", "unknown policy"),
                                           ("alg=fast", "unknown alg"), ("steps=1 steps=2", "twice"), ("", "at least one")])
def test_bad_grids_are_refused(group, needle):
    with pytest.raises(DcoderError, match=needle):
        parse_grid([group])


def test_sweep_writes_a_row_per_setting_and_the_png(tmp_path, tasks, exported, capsys):
    out, png = tmp_path / "sweep.json", tmp_path / "sweep.png"
    code = main(["eval", str(tasks), "--model", str(exported("dream")), "--provider", "cpu", "--max-tokens", "6",
                 "--sweep", "steps=1,6", "--sweep", "policy=verify threshold=none,0.5", "--json", str(out),
                 "--png", str(png)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(out.read_text())["sweep"]
    assert [r["setting"] for r in rows] == ["steps=1", "steps=6", "policy=verify threshold=none",
                                            "policy=verify threshold=0.5"]
    for r in rows:
        assert r["tasks"] == 3 and 0 <= r["exact_match"] <= 1 and 0 <= r["parse_rate"] <= 1
        assert r["positions_per_forward"] > 0 and r["ms_per_task"] > 0 and 0 <= r["same_as_first"] <= 1
    assert rows[0]["same_as_first"] == 1
    # one step resolves the whole span in one pass (plus repair rounds); six steps take more passes
    assert rows[0]["positions_per_forward"] > rows[1]["positions_per_forward"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "steps=6" in captured.out and "pos/pass" in captured.out


@pytest.mark.parametrize("args, needle", [
    (["--sweep", "policy=nope"], "unknown policy"),
    (["--sweep", "threshold=0"], "--threshold must be from 0.001 to 1"),
    (["--sweep", "policy=learned"], "needs --policy-file"),
    (["--sweep", "steps=2", "--canonical"], "--sweep runs a model"),
    (["--png", "x.png"], "--png draws a --sweep"),
])
def test_bad_sweeps_are_one_line(tasks, exported, capsys, args, needle):
    code = main(["eval", str(tasks), "--model", str(exported("dream")), "--provider", "cpu", *args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("dcoder: error:") and needle in lines[-1], err
