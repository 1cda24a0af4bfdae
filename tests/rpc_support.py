"""A raw JSON-RPC client for the real ``dcoder lsp`` process (stdio or TCP): it sends exactly the
bytes a test asks for, answers the server's requests like an editor, and records everything."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time

SERVER = [sys.executable, "-m", "dcoder", "lsp"]
DEADLINE = 120  # seconds: a hang guard, not a speed check


def frame(message) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Peer:
    """One client connection. ``received``: every message from the server, in order."""

    def __init__(self, reader, write) -> None:
        self.received: list[dict] = []
        self._inbox: queue.Queue = queue.Queue()
        # Writes go through their own thread: the reader never waits on a full pipe while the
        # server waits for it to read.
        self._outbox: queue.Queue = queue.Queue()
        self.closed = threading.Event()
        threading.Thread(target=self._read, args=(reader,), daemon=True).start()
        threading.Thread(target=self._send_all, args=(write,), daemon=True).start()

    def _send_all(self, write) -> None:
        while True:
            data = self._outbox.get()
            try:
                write(data)
            except (OSError, ValueError):
                pass  # the server is gone: what it never got, it never answers
            finally:
                self._outbox.task_done()

    def _read(self, stream) -> None:
        try:
            while True:
                length = None
                while (line := stream.readline()) not in (b"\r\n", b"\n"):
                    if not line:
                        return
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                message = json.loads(stream.read(length))
                self.received.append(message)
                if "method" in message and "id" in message:
                    self.send({"jsonrpc": "2.0", "id": message["id"], "result": self.answer(message)})
                self._inbox.put(message)
        except (OSError, ValueError):
            return
        finally:
            self.closed.set()

    @staticmethod
    def answer(request: dict):
        return {"workspace/applyEdit": {"applied": True}, "workspace/configuration": [{}]}.get(request["method"])

    def send(self, message) -> None:
        self._outbox.put(frame(message))

    def flush(self, timeout: float = DEADLINE) -> None:
        """Wait until everything sent was written (a server that stops reading makes this give up)."""
        end = time.monotonic() + timeout
        while self._outbox.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.01)

    def request(self, msg_id, method: str, params=None) -> dict:
        message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.reply(msg_id)

    def notify(self, method: str, params=None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def reply(self, msg_id, timeout: float = DEADLINE) -> dict:
        """The server's reply to request ``msg_id``."""
        end = time.monotonic() + timeout
        while True:
            for m in self.received:
                if m.get("id") == msg_id and "method" not in m:
                    return m
            try:
                self._inbox.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no reply to request {msg_id!r}") from None

    def replies(self) -> list[dict]:
        return [m for m in self.received if "method" not in m]

    def notifications(self, method: str) -> list[dict]:
        return [m["params"] for m in self.received if m.get("method") == method and "id" not in m]

    def requests(self, method: str) -> list[dict]:
        return [m for m in self.received if m.get("method") == method and "id" in m]

    def initialize(self, msg_id=0, **options) -> dict:
        reply = self.request(msg_id, "initialize", {"processId": None, "capabilities": {
            "window": {"workDoneProgress": True},
            "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}}},
            "initializationOptions": options})
        self.notify("initialized", {})
        return reply


class StdioServer(Peer):
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([*SERVER, "--stdio", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)

        def write(data: bytes) -> None:
            self.process.stdin.write(data)
            self.process.stdin.flush()

        super().__init__(self.process.stdout, write)

    def finish(self) -> tuple[int | None, str]:
        """Close stdin; the exit code (None: it did not exit in time, and was killed) and stderr."""
        self.flush()
        try:
            self.process.stdin.close()
        except (OSError, ValueError):  # the writer thread may be stuck in a write to it
            pass
        try:
            code = self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            self.process.kill()
        return code, self.process.stderr.read().decode()


class TcpServer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen([*SERVER, "--tcp", f"127.0.0.1:{self.port}"], stderr=subprocess.PIPE)

    def connect(self) -> Peer:
        end = time.monotonic() + DEADLINE
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
                break
            except ConnectionRefusedError:
                assert self.process.poll() is None, self.process.stderr.read().decode()
                assert time.monotonic() < end, "the server never listened"
                time.sleep(0.05)
        peer = Peer(sock.makefile("rb"), sock.sendall)
        peer.socket = sock
        return peer

    def stop(self) -> str:
        self.process.kill()
        self.process.wait(timeout=DEADLINE)
        return self.process.stderr.read().decode()
