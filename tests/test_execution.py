"""The sandbox that runs benchmark tests: real child interpreters, real limits."""

from __future__ import annotations

import re
from pathlib import Path

from dcoder.execution import Limits, Sandbox, run_program

QUICK = Limits(timeout=1.0)


def test_correct_program_passes():
    assert run_program("def f(x):\n    return x + 1\nassert f(1) == 2\n", QUICK).passed


def test_failed_assertion_and_crash_are_failures_with_their_reason():
    wrong = run_program("assert 1 + 1 == 3\n", QUICK)
    crash = run_program("def f():\n    return 1 / 0\nf()\n", QUICK)
    syntax = run_program("def f(:\n", QUICK)
    assert (wrong.status, wrong.detail) == ("failed", "AssertionError")
    assert crash.status == "failed" and crash.detail.startswith("ZeroDivisionError")
    assert syntax.status == "failed" and "SyntaxError" in syntax.detail


def test_infinite_loop_times_out():
    outcome = run_program("while True:\n    pass\n", QUICK)
    assert outcome.status == "timeout"


def test_exit_before_the_checks_is_not_a_pass():
    outcome = run_program("import sys\nsys.exit(0)\nassert False\n", QUICK)
    assert outcome.status == "failed" and "SystemExit" in outcome.detail


def test_files_written_stay_in_a_temporary_folder_that_is_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = ("import os, tempfile\n"
              "open('leak.txt', 'w').write('x')\n"
              "with tempfile.NamedTemporaryFile('w') as fh:\n    fh.write('y')\n"
              "raise RuntimeError('cwd=' + os.getcwd())\n")
    outcome = run_program(source, QUICK)
    folder = re.search(r"cwd=(\S+)", outcome.detail).group(1)
    assert Path(folder).resolve() != tmp_path.resolve()
    assert not Path(folder).exists()
    assert not (tmp_path / "leak.txt").exists()


def test_writes_and_deletes_outside_the_folder_are_refused(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    target = tmp_path / "escaped.txt"
    for source in (f"open({str(target)!r}, 'w').write('x')\n",
                   f"import os\nos.remove({str(victim)!r})\n",
                   f"import pathlib\npathlib.Path({str(victim)!r}).write_text('gone')\n",
                   f"import os\nos.symlink({str(victim)!r}, 'link')\nopen('link', 'w').write('gone')\n"):
        outcome = run_program(source, QUICK)
        assert outcome.status == "failed" and "PermissionError" in outcome.detail, source
    assert not target.exists()
    assert victim.read_text() == "precious"


def test_no_network_and_no_new_processes():
    sock = run_program("import socket\nsocket.create_connection(('127.0.0.1', 9))\n", QUICK)
    proc = run_program("import subprocess\nsubprocess.run(['true'])\n", QUICK)
    system = run_program("import os\nos.system('true')\n", QUICK)
    for outcome in (sock, proc, system):
        assert outcome.status == "failed" and "PermissionError" in outcome.detail


def test_memory_limit():
    outcome = run_program("block = bytearray(2 << 30)\n", Limits(timeout=2.0, memory_mb=256))
    assert outcome.status == "failed" and "MemoryError" in outcome.detail


def test_output_flood_does_not_block():
    assert run_program("for i in range(200000):\n    print('x' * 80)\n", Limits(timeout=3.0)).passed


def test_sandbox_runs_in_parallel_and_keeps_order():
    sources = ["assert True\n", "assert False\n", "pass\n", "raise ValueError('v')\n"]
    with Sandbox(QUICK, jobs=2) as sandbox:
        outcomes = sandbox.run_all(sources)
    assert sandbox.jobs == 2
    assert [o.passed for o in outcomes] == [True, False, True, False]
    assert outcomes[3].detail == "ValueError: v"
