"""Language server transports (TCP, with raw JSON-RPC over a socket) and its runtime path, which
never imports torch."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

from conftest import SAMPLE

CODE = SAMPLE  # the engine tests' sample file


def _rpc(sock: socket.socket, message: dict) -> None:
    body = json.dumps(message).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _read(stream) -> dict:
    length = 0
    while (line := stream.readline().strip()):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(stream.read(length))


def test_tcp_transport():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "dcoder", "lsp", "--tcp", f"127.0.0.1:{port}"],
                              stderr=subprocess.PIPE)
    try:
        for _ in range(1000):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except ConnectionRefusedError:
                assert server.poll() is None, server.stderr.read().decode()
                subprocess.run(["sleep", "0.05"])
        with sock, sock.makefile("rb") as stream:
            _rpc(sock, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
            reply = _read(stream)
            assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "dcoder"
            _rpc(sock, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
            while _read(stream).get("id") != 2:
                pass
            _rpc(sock, {"jsonrpc": "2.0", "method": "exit"})
            assert stream.read() == b""  # exit ends this connection's session, not the server
        assert server.poll() is None
    finally:
        server.kill()
        server.stderr.close()
    bad = subprocess.run([sys.executable, "-m", "dcoder", "lsp", "--tcp", "nowhere"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("dcoder: error: bad --tcp")


def test_server_path_never_imports_torch(model):
    script = textwrap.dedent(f"""
        import sys
        from dcoder_lsp.server import create_server
        from dcoder_lsp.loader import Loader
        from dcoder_lsp.config import Settings
        from dcoder_lsp.documents import Document
        from dcoder_lsp import operations
        create_server()
        engine = Loader(lambda level, message: None).engine({model!r}, "cpu")
        doc = Document("file:///x.py", "python", 1, {CODE!r})
        operations.complete(engine, doc, 40, Settings(steps=4), lambda step: False, lambda: False)
        assert "torch" not in sys.modules, "torch was imported"
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
