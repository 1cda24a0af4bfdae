"""Run a Python program in a throw-away sandbox, a few at a time: the tests of benchmark tasks.

Each program runs in a fresh interpreter (``python -I -B``, this file as its script) inside its
own temporary folder and session, so a timeout kills it with anything it started. Before the
program runs, the child limits its address space, CPU time, file size and core dumps; moves into
new user and network namespaces when the kernel allows (then it has no network device but a
loopback that is down); and installs an audit hook that refuses sockets, new processes, ctypes
and any write outside its folder. The audit hook stops the accidents generated code makes; it is
not a wall against code written to escape (CPython's audit hooks are not a security boundary).
"""

from __future__ import annotations

import os
import sys

PROGRAM = "program.py"
EXIT_EARLY = 3  # the program called exit() before its checks finished: not a pass
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MAX_JOBS = 2  # the tests share the machine with the model

# Audit events refused outright: network, new processes, and ctypes (which could undo the rest).
BLOCKED_EVENTS = frozenset({
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function",
    "ctypes.cdata",
})
# Audit events that change the file system, with the positions of their path arguments.
PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (1,), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (1,),
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


# ---- the child: runs as ``python -I -B execution.py FOLDER MEMORY CPU FSIZE`` ----------------

def _isolate_network() -> bool:
    """Enter new user + network namespaces; False where the kernel refuses (the hook still holds)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0
    except (OSError, AttributeError):
        return False


def _guard(folder: str):
    inside = folder + os.sep

    def allowed(path) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor
        real = os.path.realpath(os.fsdecode(path))
        return real.startswith(inside) or real in (folder, os.devnull)

    def hook(event: str, args: tuple) -> None:
        if event in BLOCKED_EVENTS:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags or 0) & WRITE_FLAGS
            if writes and path is not None and not allowed(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the sandbox folder")
        elif event in PATH_EVENTS:
            for i in PATH_EVENTS[event]:
                if i < len(args) and args[i] is not None and not allowed(args[i]):
                    raise PermissionError(f"sandbox: {event} on {args[i]!r} outside the sandbox folder")

    return hook


def _child(argv: list[str]) -> int:
    import resource

    folder, memory, cpu, fsize = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    _isolate_network()
    for limit, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu),
                         (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))
    with open(os.path.join(folder, PROGRAM), encoding="utf-8") as fh:
        code = compile(fh.read(), PROGRAM, "exec")
    sys.addaudithook(_guard(os.path.realpath(folder)))
    try:
        exec(code, {"__name__": "__main__"})
    except SystemExit as exc:
        sys.stderr.write(f"SystemExit({exc.code!r}) before the program finished\n")
        return EXIT_EARLY
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))


# ---- the parent -----------------------------------------------------------------------------

import signal  # noqa: E402  (the child above needs none of these; it starts faster without them)
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from concurrent.futures import Future, ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402


@dataclass(frozen=True)
class Limits:
    timeout: float = 3.0  # wall-clock seconds, the customary HumanEval limit
    memory_mb: int = 1024  # address space
    file_mb: int = 16  # largest file the program may write (its stderr included)

    @property
    def cpu_seconds(self) -> int:
        return int(self.timeout) + 1


@dataclass(frozen=True)
class Outcome:
    status: str  # "passed", "failed" or "timeout"
    detail: str = ""  # why it failed: the last line of its stderr, or the signal that ended it

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def default_jobs() -> int:
    return max(1, min(MAX_JOBS, len(os.sched_getaffinity(0))))


def _last_line(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 4096))
        tail = fh.read().decode("utf-8", "replace")
    lines = [line for line in tail.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_program(source: str, limits: Limits = Limits()) -> Outcome:
    """Run ``source`` as a script in a fresh sandbox; it passes when it exits normally with 0."""
    with tempfile.TemporaryDirectory(prefix="dcoder-run-", ignore_cleanup_errors=True) as root:
        box = Path(root, "box")
        box.mkdir()
        (box / PROGRAM).write_text(source, encoding="utf-8")
        stderr = Path(root, "stderr")
        env = {"PATH": os.defpath, "HOME": str(box), "TMPDIR": str(box), "LANG": "C.UTF-8"}
        args = [sys.executable, "-I", "-B", __file__, str(box), str(limits.memory_mb << 20),
                str(limits.cpu_seconds), str(limits.file_mb << 20)]
        with open(stderr, "wb") as err:
            proc = subprocess.Popen(args, cwd=box, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            try:
                code = proc.wait(timeout=limits.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                return Outcome("timeout", f"still running after {limits.timeout:g} s")
            finally:
                _kill_group(proc.pid)
        if code == 0:
            return Outcome("passed")
        if code < 0:
            return Outcome("failed", f"killed by {signal.Signals(-code).name}")
        return Outcome("failed", _last_line(stderr))


class Sandbox:
    """Runs programs in parallel, ``jobs`` at a time (default: up to 2 cores)."""

    def __init__(self, limits: Limits = Limits(), jobs: int | None = None) -> None:
        self.limits = limits
        self.jobs = jobs or default_jobs()
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="dcoder-sandbox")

    def submit(self, source: str) -> Future:
        return self._pool.submit(run_program, source, self.limits)

    def run_all(self, sources: list[str]) -> list[Outcome]:
        return [f.result() for f in [self.submit(s) for s in sources]]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
