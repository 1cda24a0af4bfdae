"""The language server's project context over JSON-RPC: the real ``dcoder lsp`` process indexes
its workspace folder, keeps the index up to date with the editor's text, and sends the code most
like the code at the cursor, and the scope bias, with each run. The runs go to a stand-in dcoder
server (the ``server`` setting) that records each request, so the test sees exactly what the
engine would be asked; the last test runs the built-in model itself."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

import pytest
from rpc_support import DEADLINE, StdioServer

from dcoder.engine.engine import BUILTIN_MODEL

TABLE = '''def render_table(rows, widths):
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append(" | ".join(cells))
    return "\\n".join(lines)
'''
CURRENT = '''def print_rows(rows, widths):
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        '''
UNSAVED = '''def draft_rows(rows, widths, margin):
    for row in rows:
        cells = [cell.ljust(width + margin) for cell, width in zip(row, widths)]
'''


class Recorder(http.server.BaseHTTPRequestHandler):
    """POST /v1/infill: records the request, answers one streamed result that fills each range with ``pass``."""

    bodies: list[dict] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.bodies.append(body)
        edits = [{"start_offset": a, "end_offset": b, "text": "pass"} for a, b in body["ranges"]]
        result = {"text": body["text"], "edits": edits, "forward_passes": 1, "steps": 1, "score": 0.0,
                  "generated_tokens": 1, "parses": True, "repairs": 0, "searched": False}
        data = b"data: " + json.dumps({"result": result}).encode() + b"\n\n"
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def recorder():
    Recorder.bodies = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def start(root: Path, **settings) -> StdioServer:
    server = StdioServer()
    server.request(0, "initialize", {"processId": None, "capabilities": {}, "initializationOptions": settings,
                                     "workspaceFolders": [{"uri": root.as_uri(), "name": "ws"}]})
    server.notify("initialized", {})
    return server


def logged(server: StdioServer, words: str, timeout: float = DEADLINE) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for m in server.notifications("window/logMessage"):
            if words in m["message"]:
                return m["message"]
        time.sleep(0.02)
    raise AssertionError(f"no log message with {words!r}")


def open_doc(server: StdioServer, path: Path, text: str) -> str:
    uri = path.as_uri()
    server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                            "text": text}})
    return uri


def complete(server: StdioServer, uri: str, line: int, character: int, msg_id: int) -> dict:
    reply = server.request(msg_id, "textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 1}})
    assert "result" in reply, reply
    return Recorder.bodies[-1]


def test_completions_carry_similar_workspace_code_kept_up_to_date_and_the_scope_bias(tmp_path, recorder):
    (tmp_path / ".gitignore").write_text("generated/\n")
    (tmp_path / "table.py").write_text(TABLE)
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "copy.py").write_text(TABLE.replace("render_table", "ignored_copy"))
    (tmp_path / "current.py").write_text(CURRENT)
    server = start(tmp_path, server=recorder, scopeBias=2.5)
    try:
        assert "indexed 2 files" in logged(server, "workspace: indexed")
        uri = open_doc(server, tmp_path / "current.py", CURRENT)
        body = complete(server, uri, 3, 8, 1)
        assert body["scope_bias"] == 2.5
        assert [c["path"] for c in body["context"]] == ["table.py"]  # never current.py nor the ignored copy
        assert "render_table" in body["context"][0]["text"]

        # an unsaved buffer of another workspace file is searched with the editor's text
        draft = open_doc(server, tmp_path / "draft.py", "")
        server.notify("textDocument/didChange", {"textDocument": {"uri": draft, "version": 2},
                                                 "contentChanges": [{"text": UNSAVED}]})
        body = complete(server, uri, 3, 8, 2)
        assert "draft.py" in [c["path"] for c in body["context"]]
        assert "width + margin" in json.dumps(body["context"])
        server.notify("textDocument/didClose", {"textDocument": {"uri": draft}})  # never saved: gone
        assert "draft.py" not in [c["path"] for c in complete(server, uri, 3, 8, 5)["context"]]
        open_doc(server, tmp_path / "draft.py", UNSAVED)

        server.notify("workspace/didChangeConfiguration", {"settings": {"workspaceContext": False}})
        assert complete(server, uri, 3, 8, 3)["context"] == []
        server.notify("workspace/didChangeConfiguration", {"settings": {"workspaceExclude": "table.py"}})
        assert "workspaceExclude must be a list" in logged(server, "workspaceExclude")
        server.notify("workspace/didChangeConfiguration", {"settings": {"workspaceContext": True,
                                                                        "workspaceExclude": ["table.py"]}})
        assert "indexed 1 files" in logged(server, "indexed 1 files")
        assert [c["path"] for c in complete(server, uri, 3, 8, 4)["context"]] == ["draft.py"]
    finally:
        code, _ = server.finish()
    assert code is not None


@pytest.mark.skipif(not (BUILTIN_MODEL / "manifest.json").exists(), reason="no built-in model")
def test_the_built_in_model_completes_with_both_features_in_a_workspace_with_a_symlink_loop(tmp_path):
    (tmp_path / "table.py").write_text(TABLE)
    (tmp_path / "loop").symlink_to(tmp_path)
    (tmp_path / "blob.py").write_bytes(b"\x00" * 64)
    server = start(tmp_path, provider="cpu", inlineSteps=4, maxTokens=8)
    try:
        logged(server, "workspace: indexed 1 files")
        uri = open_doc(server, tmp_path / "current.py", CURRENT)
        reply = server.request(1, "textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": 3, "character": 8}, "context": {"triggerKind": 1}})
        assert "items" in reply["result"]
        server.request(2, "shutdown")
        server.notify("exit")
    finally:
        code, stderr = server.finish()
    assert code == 0 and "Traceback" not in stderr
