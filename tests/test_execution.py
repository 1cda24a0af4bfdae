"""The sandbox that runs benchmark tests: real child interpreters, real limits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dcoder.evaluation.execution import Limits, Sandbox, run_program

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


# ---- escapes the audit hook cannot see: the kernel's layers hold them -----------------------

# _posixsubprocess.fork_exec raises no audit event; its arguments as subprocess passes them (3.11-3.13)
SPAWN = '''
import _posixsubprocess, os
def spawn(*argv, setsid=False):
    _posixsubprocess.fork_exec([a.encode() for a in argv], [argv[0].encode()], True, (), None, None,
                               -1, -1, -1, -1, -1, -1, *os.pipe(), False, setsid, -1, None, None, -1, -1,
                               None, False)
'''


def layers() -> set[str]:
    from dcoder.evaluation.execution import isolation

    return set(isolation())


def test_the_sandbox_says_how_it_contains_programs():
    from dcoder.evaluation.execution import isolation

    assert set(isolation()) <= {"namespaces", "landlock", "seccomp"}
    assert isolation() == isolation()  # found once


@pytest.mark.skipif("landlock" not in layers(), reason="no Landlock in this kernel")
def test_a_shell_started_without_an_audit_event_cannot_write_outside(tmp_path):
    target, fifo = tmp_path / "escaped.txt", tmp_path / "fifo"
    outcome = run_program(SPAWN + f"spawn('/bin/sh', '-c', 'echo x > {target}')\n"
                          "import time\ntime.sleep(0.5)\n", QUICK)
    assert outcome.passed  # the shell's write failed, not the program
    assert not target.exists()
    outcome = run_program(f"import os\nos.mkfifo({str(fifo)!r})\n", QUICK)
    assert outcome.status == "failed" and "PermissionError" in outcome.detail and not fifo.exists()
    # inside its own folder it may write
    assert run_program(SPAWN + "spawn('/bin/sh', '-c', 'echo x > out.txt')\nimport os, time\n"
                       "time.sleep(0.5)\nassert open('out.txt').read() == 'x\\n'\nos.mkfifo('f')\n", QUICK).passed


@pytest.mark.skipif("namespaces" not in layers(), reason="no user and PID namespaces here")
@pytest.mark.parametrize("ends", ["exits", "times out"])
def test_nothing_a_program_starts_outlives_it(ends):
    """A child in a session of its own is still in the program's PID namespace: it dies with it."""
    import time

    marker = f"{time.time_ns() % 10 ** 9}.5"
    source = SPAWN + f"spawn('/bin/sleep', '{marker}', setsid=True)\nimport time\ntime.sleep(0.3)\n"
    if ends == "times out":
        source += "while True:\n    pass\n"
    run_program(source, QUICK)
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes():
                alive.append(proc.name)
        except OSError:
            pass
    assert alive == []


def test_an_exit_that_skips_the_checks_is_not_a_pass():
    for source in ("import os\nos._exit(0)\nassert False\n",
                   "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"):
        outcome = run_program(source, QUICK)
        assert outcome.status == "failed", source
    assert "before" in run_program("import os\nos._exit(0)\n", QUICK).detail


@pytest.mark.skipif("seccomp" not in layers(), reason="no seccomp filter for this machine")
def test_no_socket_even_without_an_audit_event():
    """A fresh interpreter started without an audit event has no hook: the kernel refuses the socket."""
    make = f"{sys.executable} -c 'import socket; socket.socket(socket.AF_UNIX)' 2> err; echo $? > status"
    outcome = run_program(SPAWN + f"spawn('/bin/sh', '-c', {make!r})\nimport os, time\n"
                          "while not os.path.exists('status'):\n    time.sleep(0.05)\ntime.sleep(0.1)\n"
                          "assert open('status').read().strip() == '1', open('err').read()\n"
                          "assert 'PermissionError' in open('err').read()\n", Limits(timeout=5.0))
    assert outcome.passed, outcome.detail


@pytest.mark.skipif("namespaces" not in layers() or shutil.which("unshare") is None,
                    reason="needs user namespaces and the unshare command")
def test_where_namespaces_are_refused_the_other_layers_still_hold():
    """Run the sandbox in a user namespace that may not make another (max_user_namespaces 0)."""
    script = textwrap.dedent("""
        import json
        from dcoder.evaluation.execution import Limits, isolation, run_program
        quick = Limits(timeout=1.0)
        print(json.dumps([list(isolation())] + [run_program(s, quick).status for s in (
            "assert True\\n", "assert False\\n", "while True:\\n    pass\\n", "import os\\nos._exit(0)\\n")]))
    """)
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                           'echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" -c "$1"', sys.executable, script],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert proc.returncode == 0, proc.stderr
    found, *statuses = json.loads(proc.stdout)
    assert "namespaces" not in found and set(found) == layers() - {"namespaces"}
    assert statuses == ["passed", "failed", "timeout", "failed"]
