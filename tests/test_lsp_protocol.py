"""JSON-RPC and LSP lifecycle rules, and TCP sessions, checked with raw messages against the real
``dcoder lsp`` process: every request gets exactly one reply, and one client never sees another's
documents, edits or progress."""

from __future__ import annotations

import pytest
from conftest import SAMPLE
from rpc_support import StdioServer, TcpServer

INVALID_REQUEST, INVALID_PARAMS, NOT_INITIALIZED, PARSE_ERROR = -32600, -32602, -32002, -32700
URI = "file:///work/session.py"


def code(reply: dict) -> int | None:
    return reply.get("error", {}).get("code")


def position(line, character) -> dict:
    return {"textDocument": {"uri": URI}, "position": {"line": line, "character": character}}


@pytest.fixture(scope="module")
def model(exported):
    return str(exported("dream", "fp32"))


def test_params_that_do_not_deserialize_get_invalid_params():
    server = StdioServer()
    server.initialize()
    server.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "python", "version": 1,
                                                            "text": SAMPLE}})
    bad = [
        ("textDocument/completion", position(-1, 0)),
        ("textDocument/completion", position(0, 2**31)),
        ("textDocument/inlineCompletion", {**position(0, 0), "context": {"triggerKind": 1}, "position": "3:4"}),
        ("textDocument/completion", None),
        ("textDocument/completion", [URI, 0, 0]),
        ("textDocument/codeAction", {"textDocument": {"uri": URI}, "context": {"diagnostics": []}}),
        ("codeAction/resolve", {"data": {}}),
    ]
    for i, (method, params) in enumerate(bad, start=1):
        server.send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
    for i, (method, params) in enumerate(bad, start=1):
        reply = server.reply(i)
        assert code(reply) == INVALID_PARAMS and method in reply["error"]["message"], (method, params, reply)
    assert server.notifications("window/showMessage") == []  # the reply says it: no pop-up
    assert "result" in server.request(99, "textDocument/completion", position(2, 4))  # still serving
    server.request(100, "shutdown")
    server.notify("exit")
    exit_code, stderr = server.finish()
    assert exit_code == 0 and "Traceback" not in stderr


def test_lifecycle_before_initialize_after_shutdown_and_exit_codes():
    server = StdioServer()
    assert code(server.request("early", "textDocument/completion", position(0, 0))) == NOT_INITIALIZED
    assert code(server.request("early-shutdown", "shutdown")) == NOT_INITIALIZED
    server.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "python", "version": 1,
                                                            "text": SAMPLE}})  # dropped: not initialized
    assert "capabilities" in server.initialize(1)["result"]
    assert code(server.request(2, "initialize", {"processId": None, "capabilities": {}})) == INVALID_REQUEST
    actions = server.request(3, "textDocument/codeAction", {"textDocument": {"uri": URI}, "context": {"diagnostics": []},
                                                            "range": {"start": {"line": 2, "character": 4},
                                                                      "end": {"line": 2, "character": 16}}})
    assert actions["result"] == []  # the early didOpen was not kept
    assert server.request(4, "shutdown") == {"jsonrpc": "2.0", "id": 4, "result": None}
    for i, method in enumerate(["textDocument/completion", "shutdown", "initialize", "no/such"], start=5):
        assert code(server.request(i, method, position(0, 0))) == INVALID_REQUEST
    server.notify("exit")
    assert server.finish()[0] == 0

    server = StdioServer()  # exit without shutdown
    server.initialize()
    server.notify("exit")
    exit_code, stderr = server.finish()
    assert exit_code == 1 and "Traceback" not in stderr


def test_messages_that_are_not_requests_still_get_one_reply():
    server = StdioServer()
    server.initialize()
    server.send(b'{"jsonrpc": "2.0", "id": 1, "method": ')
    server.send(b"[1, 2]")
    server.send({"id": 2, "method": "shutdown"})  # no "jsonrpc"
    server.send({"jsonrpc": "2.0", "id": [3], "method": "shutdown"})
    server.send({"jsonrpc": "2.0", "id": 4, "method": {"name": "shutdown"}})
    server.send({"jsonrpc": "2.0", "id": 5, "method": "$/cancelRequest", "params": {"id": 1}})  # a notification
    assert [code(server.reply(i)) for i in (2, 4, 5)] == [INVALID_REQUEST] * 3
    nulls = [r for r in server.replies() if r["id"] is None]
    assert [code(r) for r in nulls] == [PARSE_ERROR, INVALID_REQUEST, INVALID_REQUEST]
    # an object with a "jsonrpc" key inside params is data, not a message
    reply = server.request(6, "workspace/executeCommand", {"command": "dcoder.fillHoles",
                                                           "arguments": [{"uri": {"jsonrpc": "2.0", "id": 1}}]})
    assert code(reply) == INVALID_PARAMS and "{'jsonrpc': '2.0', 'id': 1}" in reply["error"]["message"]
    server.request(7, "shutdown")
    server.notify("exit")
    exit_code, stderr = server.finish()
    assert exit_code == 0 and "Traceback" not in stderr


# ---- TCP: a session per connection --------------------------------------------------------

FAST = {"provider": "cpu", "steps": 4, "maxTokens": 4, "searchTokens": 0, "preview": True}


def open_and_fill(peer, version: int, text: str, msg_id) -> None:
    peer.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "python", "version": version,
                                                          "text": text}})
    peer.send({"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand",
               "params": {"command": "dcoder.fillHoles", "arguments": [{"uri": URI}]}})


def own_traffic_only(peer, version: int, hole_line: int) -> None:
    """Everything ``peer`` got belongs to its own document and its own progress bars."""
    (edit,) = peer.requests("workspace/applyEdit")
    (change,) = edit["params"]["edit"]["documentChanges"]
    assert change["textDocument"] == {"uri": URI, "version": version}
    assert [e["range"]["start"]["line"] for e in change["edits"]] == [hole_line]
    previews = peer.notifications("dcoder/preview")
    assert previews and {p["version"] for p in previews} == {version}
    created = {r["params"]["token"] for r in peer.requests("window/workDoneProgress/create")}
    progress = {p["token"] for p in peer.notifications("$/progress")}
    assert len(created) == 1 and progress == created


def test_every_tcp_connection_is_a_session_of_its_own(model):
    server = TcpServer()
    try:
        a, b = server.connect(), server.connect()
        a.initialize(model=model, **FAST)
        b.initialize(model=model, **{**FAST, "steps": 3})
        # the same URI in both sessions, with different text and versions
        open_and_fill(a, 1, SAMPLE.replace("a + b", "<|mask|>"), "fill-a")
        open_and_fill(b, 7, "x = 1\ny = <|mask|>\n", "fill-b")
        assert a.reply("fill-a")["result"]["applied"] and b.reply("fill-b")["result"]["applied"]
        own_traffic_only(a, 1, 2)
        own_traffic_only(b, 7, 1)
        assert max(p.get("step", 0) for p in b.notifications("dcoder/preview")) <= 3  # b's own settings

        more = [server.connect() for _ in range(4)]
        for i, peer in enumerate(more):
            peer.initialize(model=model, **FAST)
            open_and_fill(peer, 10 + i, f"v{i} = <|mask|>\n", f"fill-{i}")
        for i, peer in enumerate(more):
            assert peer.reply(f"fill-{i}")["result"]["applied"]
            own_traffic_only(peer, 10 + i, 0)

        a.request("bye", "shutdown")
        a.notify("exit")
        assert a.closed.wait(60), "exit did not end the session"
        loads = [m for peer in (a, b, *more) for m in peer.notifications("window/logMessage")
                 if "loading model" in m["message"]]
        assert len(loads) == 1  # one model in memory, shared by the sessions
        assert b.request("still", "textDocument/completion", position(1, 4))["result"] is not None
        late = server.connect()
        assert "capabilities" in late.initialize()["result"]
    finally:
        stderr = server.stop()
    assert "Traceback" not in stderr
