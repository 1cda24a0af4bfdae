"""Run a Python program in a throw-away sandbox, a few at a time: the tests of benchmark tasks.

Each program runs in a fresh interpreter (``python -I -B``, this file as its script) inside its
own temporary folder and session. Before the program runs, the child builds what the kernel
offers of these layers (``isolation()`` names those it got; docs/reliability.md says exactly what
each one contains and what none does):

- namespaces: new user, PID, network and IPC namespaces. The program runs as PID 1 of its PID
  namespace, so when it ends, or is killed at the time-out, the kernel kills everything it
  started, even in a session of its own; it has no network but a loopback that is down.
- landlock: no writing, creating, removing or renaming anything outside its folder (besides
  /dev/null), whatever runs the write (a shell, ``_posixsubprocess.fork_exec``); no TCP; no
  signals or abstract Unix sockets to processes outside.
- seccomp: no socket can be made at all (Unix sockets included).

It always limits address space, CPU time, file size and core dumps, and installs an audit hook
that refuses sockets, new processes, ctypes and writes outside its folder: the hook gives
generated code's accidents a clear error, but it is no wall (CPython's audit hooks are not a
security boundary, and ``fork_exec`` raises no event). A program passes only when it runs to its
end: the child then writes a token the parent chose and passed on stdin, so an ``os._exit(0)``
before the checks is a failure.
"""

from __future__ import annotations

import os
import sys

PROGRAM = "program.py"
EXIT_EARLY = 3  # the program called exit() before its checks finished: not a pass
MAX_JOBS = 2  # the tests share the machine with the model
TIDY_S = 2.0  # seconds a timed-out child gets to end the program and all it started before it is killed

CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x10000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 22, 38
# Landlock (linux/landlock.h): system calls, and the rights handled from each ABI version on
LANDLOCK_CREATE_RULESET, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_WRITES = {1: 0b1_1111_1111_0010, 2: 1 << 13, 3: 1 << 14}  # write, remove, make *; refer; truncate
LANDLOCK_FILE_WRITES = {1: 1 << 1, 3: 1 << 14}  # write, truncate: the rights a single file may get
LANDLOCK_TCP, LANDLOCK_SCOPES = 0b11, 0b11  # bind and connect (ABI 4); abstract sockets and signals (ABI 6)
# seccomp: the architecture's audit number, its socket(2) number, and whether it has the x32 ABI
SECCOMP_ARCH = {"x86_64": (0xC000003E, 41, True), "aarch64": (0xC00000B7, 198, False)}

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


# ---- the child: runs as ``python -I -B execution.py FOLDER MEMORY CPU FSIZE TOKEN_FD`` -------

def _namespaces(libc) -> bool:
    """Enter new user, PID, network and IPC namespaces, then fork: this process stays outside,
    waits for the child (PID 1 inside) and ends as it ends; the child returns True. False where
    the kernel refuses (the other layers still hold)."""
    import signal

    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC) != 0:
        return False
    for name, line in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(line)
    lifeline, keep = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(keep)
        # killed with this process (the parent's time-out kills its process group, which the
        # program may have left); its parent may already be gone: then the pipe is closed
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.set_blocking(lifeline, False)
        try:
            if os.read(lifeline, 1) == b"":
                os._exit(1)
        except BlockingIOError:
            pass
        os.close(lifeline)
        return True
    os.close(lifeline)
    # the parent's time-out: end the program; waitpid returns once nothing it started is left
    signal.signal(signal.SIGUSR1, lambda *_: os.kill(pid, signal.SIGKILL))
    status = os.waitpid(pid, 0)[1]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _landlock(libc, folder: str) -> bool:
    """Allow writes only beneath ``folder`` (and to /dev/null), no TCP, no signals or abstract
    sockets out, for this process and all it starts. False without Landlock."""
    import ctypes
    import struct

    abi = libc.syscall(LANDLOCK_CREATE_RULESET, None, 0, 1)  # 1: LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        return False
    writes = sum(bits for version, bits in LANDLOCK_WRITES.items() if abi >= version)
    file_writes = sum(bits for version, bits in LANDLOCK_FILE_WRITES.items() if abi >= version)
    attr = struct.pack("<QQQ", writes, LANDLOCK_TCP if abi >= 4 else 0, LANDLOCK_SCOPES if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(LANDLOCK_CREATE_RULESET, ctypes.c_char_p(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        return False
    try:
        for path, rights in ((folder, writes), (os.devnull, file_writes)):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = struct.pack("<Qi", rights, fd)  # struct landlock_path_beneath_attr (packed)
                if libc.syscall(LANDLOCK_ADD_RULE, ruleset, 1, ctypes.c_char_p(rule), 0) != 0:
                    return False
            finally:
                os.close(fd)
        return libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 and libc.syscall(LANDLOCK_RESTRICT_SELF, ruleset, 0) == 0
    finally:
        os.close(ruleset)


def _seccomp(libc) -> bool:
    """Make socket(2) fail with EPERM (and every system call of another ABI) for this process and
    all it starts. False on an architecture without a filter here."""
    import ctypes
    import platform
    import struct

    known = SECCOMP_ARCH.get(platform.machine())
    if known is None:
        return False
    arch, socket_nr, x32 = known
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    code = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, deny), (ld, 0, 0, 0)]
    if x32:
        code.append((jge, 2, 0, 0x40000000))  # an x32 system call: to the deny below
    code += [(jeq, 1, 0, socket_nr), (ret, 0, 0, allow), (ret, 0, 0, deny)]
    filters = ctypes.create_string_buffer(b"".join(struct.pack("<HBBI", *c) for c in code))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    program = Program(len(code), ctypes.addressof(filters))
    return (libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            and libc.prctl(PR_SET_SECCOMP, 2, ctypes.byref(program), 0, 0) == 0)  # 2: SECCOMP_MODE_FILTER


def _isolate(folder: str) -> list[str]:
    """Every layer the kernel grants (see the module docstring), by name."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except (OSError, AttributeError):
        return []
    layers = []
    for name, build in (("namespaces", lambda: _namespaces(libc)), ("landlock", lambda: _landlock(libc, folder)),
                        ("seccomp", lambda: _seccomp(libc))):
        try:
            if build():
                layers.append(name)
        except (OSError, AttributeError):
            pass
    return layers


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

    folder, memory, cpu, fsize, token_fd = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    token = sys.stdin.buffer.read()  # before the program can read stdin
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    layers = _isolate(folder)
    os.set_inheritable(token_fd, False)
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
    os.write(token_fd, token + b" " + ",".join(layers).encode())
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))


# ---- the parent -----------------------------------------------------------------------------

import functools  # noqa: E402  (the child above needs none of these; it starts faster without them)
import secrets  # noqa: E402
import signal  # noqa: E402
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
    layers: tuple[str, ...] = ()  # the kernel's layers it ran in (known when it ran to its end)

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
    """Run ``source`` as a script in a fresh sandbox; it passes when it runs to its end and exits with 0."""
    token = secrets.token_hex(16).encode()
    with tempfile.TemporaryDirectory(prefix="dcoder-run-", ignore_cleanup_errors=True) as root:
        box = Path(root, "box")
        box.mkdir()
        (box / PROGRAM).write_text(source, encoding="utf-8")
        stderr = Path(root, "stderr")
        env = {"PATH": os.defpath, "HOME": str(box), "TMPDIR": str(box), "LANG": "C.UTF-8"}
        report, done = os.pipe()
        try:
            args = [sys.executable, "-I", "-B", __file__, str(box), str(limits.memory_mb << 20),
                    str(limits.cpu_seconds), str(limits.file_mb << 20), str(done)]
            with open(stderr, "wb") as err:
                proc = subprocess.Popen(args, cwd=box, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=err, pass_fds=(done,), start_new_session=True)
                os.close(done)
                done = -1
                try:
                    with proc.stdin:
                        proc.stdin.write(token)
                    code = proc.wait(timeout=limits.timeout)
                except subprocess.TimeoutExpired:
                    # with namespaces the child ends the program and returns once all it started is
                    # gone (see _namespaces); without, the signal ends the program
                    proc.send_signal(signal.SIGUSR1)
                    try:
                        proc.wait(timeout=TIDY_S)
                    except subprocess.TimeoutExpired:
                        _kill_group(proc.pid)
                        proc.wait()
                    return Outcome("timeout", f"still running after {limits.timeout:g} s")
                except BrokenPipeError:  # it died before reading the token
                    code = proc.wait()
                finally:
                    _kill_group(proc.pid)
            os.set_blocking(report, False)
            try:
                finished, _, layers = os.read(report, 4096).partition(b" ")
            except BlockingIOError:
                finished, layers = b"", b""
        finally:
            for fd in (report, done):
                if fd >= 0:
                    os.close(fd)
        if code == 0 and finished == token:
            return Outcome("passed", layers=tuple(layers.decode().split(",")) if layers else ())
        if code == 0:
            return Outcome("failed", "exited with 0 before it ran to its end (os._exit?)")
        if code < 0:
            return Outcome("failed", f"killed by {signal.Signals(-code).name}")
        return Outcome("failed", _last_line(stderr))


@functools.cache
def isolation() -> tuple[str, ...]:
    """The kernel's layers the sandbox gets on this machine (see the module docstring), found
    once, by running an empty program."""
    return run_program("").layers


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
