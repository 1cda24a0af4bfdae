"""Seeded random bad input against the real CLI (in process) and the real language server (stdio).

Whatever comes in: no crash, no hang (a deadline per case), no traceback, no user file changed
except by a successful ``--in-place``, and exactly one reply to every request. The streams are
fixed by their seeds, so a failure replays; its case is in the assertion message.
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import SAMPLE
from rpc_support import StdioServer

CLI_CASES, LSP_CASES = 120, 200
CASE_SECONDS = 60  # a hang guard per case, not a speed check


class Hang(BaseException):
    """Raised by the deadline; a BaseException so the CLI's own error handling cannot swallow it."""


@contextmanager
def deadline(seconds: float, case):
    def expire(signum, frame):
        raise Hang(f"case {case} ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---- the command line ----------------------------------------------------------------------

# Each value is right (so that runs get far) or wrong (so that they fail), at random.
GOOD_POSITIONS = ["3:12", "1:1", "11:9", "2:5", "13:1"]
BAD_POSITIONS = ["0:0", "-1:5", "3:", ":", "", "a:b", "99999:1", "3:99999", "1e3:1", "3:12:1", " 3:12", "\u0663:1",
                 "9" * 40 + ":1", "nan:1"]
GOOD_RANGES = ["3:12-3:17", "11:9-12:26", "1:1-3:17", "7:9-8:26"]
BAD_RANGES = ["1:1-1:1", "3:17-3:12", "1:1-99:1", "-", "3:12-", "-3:12", "", "3:12--3:17", "4:1-5:1", "a-b"]
BAD_NUMBERS = ["-1", "0", "nan", "inf", "-inf", "1e309", "", "x", "0x10", "1.5", "-0", "1_000", "99999999999999999999"]
BAD_FRACTIONS = ["-0.1", "1.1", "nan", "inf", "-inf", "", "x"]
OPTIONS = {  # name: (right values, wrong values)
    "--steps": (["1", "2", "4", "9999"], BAD_NUMBERS), "--max-tokens": (["1", "4", "16"], BAD_NUMBERS + ["999999"]),
    "--exact-length": (["1", "3"], BAD_NUMBERS + ["999999"]), "--seed": (["0", "7", str(2**70)], BAD_NUMBERS),
    "--max-context": (["1", "16", "64", "999999"], BAD_NUMBERS), "--top-k": (["1", "5", "999999"], BAD_NUMBERS),
    "--cache-refresh": (["0", "1"], BAD_NUMBERS), "--repair": (["0", "1"], BAD_NUMBERS),
    "--candidates": (["1", "2"], BAD_NUMBERS), "--temperature": (["0", "0.7", "5"], BAD_FRACTIONS),
    "--alg-temp": (["0", "0.5"], BAD_FRACTIONS), "--top-p": (["0.5", "1"], BAD_FRACTIONS + ["0"]),
    "--threshold": (["0.5", "0.9", "1"], BAD_FRACTIONS + ["0"]), "--min-confidence": (["0.5", "1"], BAD_FRACTIONS + ["0"]),
    "--alg": (["entropy", "origin", "maskgit_plus", "topk_margin"], ["nope", ""]),
    "--provider": (["cpu"], ["tpu", ""]), "--language": (["python", "rust", "cobol"], ["", "../python", "python\x00"]),
}
FLAGS = ["--json", "--diff", "--in-place", "--allow-broken", "--show-steps"]
GOOD_FILES = ["sample", "holes", "crlf", "link", "sample", "holes"]
BAD_FILES = ["empty", "binary", "readonly", "folder", "missing"]


def pick(rng: random.Random, good: list[str], bad: list[str]) -> str:
    return rng.choice(good if rng.random() < 0.75 else bad)


def user_files(folder: Path) -> dict[str, Path]:
    files = {"sample": folder / "sample.py", "crlf": folder / "crlf.py", "empty": folder / "empty.py",
             "binary": folder / "binary.py", "holes": folder / "holes.py", "readonly": folder / "readonly.py"}
    files["sample"].write_text(SAMPLE)
    files["crlf"].write_bytes(SAMPLE.replace("\n", "\r\n").encode())
    files["empty"].write_text("")
    files["binary"].write_bytes(b"x = '\xff\xfe'\n\x00")
    files["holes"].write_text("x = <|mask|>\ndef f(<|mask|>):\n    return <|mask|>\n")
    files["readonly"].write_text(SAMPLE)
    os.chmod(files["readonly"], 0o444)
    (folder / "link.py").symlink_to(files["sample"])
    files["link"] = folder / "link.py"
    (folder / "sub").mkdir()
    files["folder"] = folder / "sub"
    files["missing"] = folder / "missing.py"
    return files


def snapshot(folder: Path) -> dict:
    """Every entry: a link's target, a file's mode and bytes, or a folder's mode."""
    def state(p: Path):
        if p.is_symlink():
            return os.readlink(p)
        return (p.stat().st_mode, p.read_bytes() if p.is_file() else None)
    return {str(p.relative_to(folder)): state(p) for p in sorted(folder.rglob("*"))}


def cli_case(rng: random.Random, model: Path) -> list[str]:
    """Arguments with the file as a key of ``user_files``."""
    command = rng.choice(["infill", "infill", "infill", "refine", "refine", "regions"])
    args = [command, pick(rng, GOOD_FILES, BAD_FILES)]
    if command == "regions":
        return args + ["--at", pick(rng, GOOD_POSITIONS, BAD_POSITIONS)]
    if command == "refine":
        args += ["--range", pick(rng, GOOD_RANGES, BAD_RANGES)]
    elif rng.random() < 0.3:
        args += ["--range", pick(rng, GOOD_RANGES, BAD_RANGES)]
    elif rng.random() < 0.7:
        args += ["--at", pick(rng, GOOD_POSITIONS, BAD_POSITIONS)]
        if rng.random() < 0.4:
            args += ["--region", pick(rng, ["function.inner", "call.outer", "return.value"], ["", "nope", "function."])]
    for name in rng.sample(list(OPTIONS), rng.randint(0, 3)):
        args += [f"{name}={pick(rng, *OPTIONS[name])}"]
    args += rng.sample(FLAGS, rng.choice([0, 1, 1, 2]))
    if "--in-place" in args and "--allow-broken" not in args and rng.random() < 0.6:
        args.append("--allow-broken")  # the tiny model's fills rarely parse: let some writes happen
    args += ["--model", str(model) if rng.random() < 0.95 else str(model.parent / "nowhere")]
    # the constrained search is the slow part (its bounds are checked elsewhere): mostly off
    return args + ["--search-tokens=0" if rng.random() < 0.9 else "--search-tokens=1"]


def one_wrong_value(model: Path) -> list[list[str]]:
    """Every wrong value of every option, each on a run that is otherwise right."""
    run = ["--model", str(model), "--search-tokens=0"]
    cases = [["infill", "sample", "--at", "3:12", f"{name}={value}", *run]
             for name, (_, bad) in OPTIONS.items() if name != "--min-confidence" for value in bad]
    cases += [["refine", "sample", "--range", "3:12-3:17", f"--min-confidence={v}", *run] for v in OPTIONS["--min-confidence"][1]]
    cases += [["infill", "sample", "--at", "3:12", f"--region={v}", *run] for v in ["", "nope", "function."]]
    cases += [["infill", "sample", "--at", v, *run] for v in BAD_POSITIONS]
    cases += [["refine", "sample", "--range", v, *run] for v in BAD_RANGES]
    return cases


def test_fuzz_the_command_line(exported, tmp_path, capsys):
    from dcoder.cli import main

    model = exported("dream", "fp32")
    rng = random.Random(2026)
    cases = one_wrong_value(model) + [cli_case(rng, model) for _ in range(CLI_CASES)]
    for case, (command, file, *rest) in enumerate(cases):
        folder = tmp_path / f"case{case}"
        folder.mkdir()
        files = user_files(folder)
        before = snapshot(folder)
        argv = [command, str(files[file]), *rest]
        with deadline(CASE_SECONDS, argv):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: usage and one error line
                code = exc.code
        out = capsys.readouterr()
        where = f"case {case}: dcoder {' '.join(map(repr, argv))}\n{out.err}"
        assert code in (0, 2), where
        assert "Traceback" not in out.err and "internal error" not in out.err, where
        if code == 2:
            assert out.err.strip().splitlines()[-1].startswith(("dcoder: error:", "dcoder infill: error:",
                                                                "dcoder refine: error:", "dcoder regions: error:")), where
        after = snapshot(folder)
        changed = {name for name in before if before[name] != after.get(name)} | (after.keys() - before.keys())
        if code == 0 and "--in-place" in argv:
            target = Path(argv[1]).resolve().relative_to(folder.resolve())
            assert changed <= {str(target)}, where
        else:
            assert not changed, where
        os.chmod(files["readonly"], 0o644)


# ---- the language server ----------------------------------------------------------------------

ODD = [-1, 2**31, 2**53, 1.5, "x", "", None, [], {}, True, "\ud800", "\x00" * 3, "a" * 10_000, {"jsonrpc": "2.0"}]
ODD_TEXTS = ["", "\x00\x00", "\ud800 \udfff", "\r\r\n\u2028\u2029\x0c", "<|mask|>" * 50, "é" * 5000,
             "def f(:\n" * 200, "\t" * 1000, "x = 1\r\ny = <|mask|>\r\n"]


def mutate(rng: random.Random, value):
    """``value`` with one randomly chosen part replaced by an odd value (or removed)."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        out = dict(value)
        if rng.random() < 0.2:
            del out[key]
        else:
            out[key] = mutate(rng, value[key])
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        out = list(value)
        i = rng.randrange(len(out))
        out[i] = mutate(rng, out[i])
        return out
    return copy.deepcopy(rng.choice(ODD))


def lsp_messages(rng: random.Random, uri: str):
    """(method, params, is_request) of a seeded stream: valid requests, mutated ones, odd documents."""
    version = 1
    rng_pos = lambda: {"line": rng.choice([0, 2, 3, 11, 500]), "character": rng.choice([0, 4, 12, 80])}
    for _ in range(LSP_CASES):
        kind = rng.random()
        doc = {"uri": uri}
        if kind < 0.15:
            version += 1
            yield "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": rng.choice(["python", "rust", "x"]),
                                                            "version": version, "text": rng.choice(ODD_TEXTS + [SAMPLE])}}, False
            continue
        if kind < 0.25:
            version += 1
            change = rng.choice([{"text": rng.choice(ODD_TEXTS)},
                                 {"range": {"start": rng_pos(), "end": rng_pos()}, "text": rng.choice(ODD_TEXTS)}])
            yield "textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                             "contentChanges": [change]}, False
            continue
        range_ = {"start": rng_pos(), "end": rng_pos()}
        valid = rng.choice([
            ("textDocument/inlineCompletion", {"textDocument": doc, "position": rng_pos(), "context": {"triggerKind": 1}}),
            ("textDocument/completion", {"textDocument": doc, "position": rng_pos()}),
            ("textDocument/codeAction", {"textDocument": doc, "range": range_, "context": {"diagnostics": []}}),
            ("codeAction/resolve", {"title": "Refine selection", "data": {
                "op": rng.choice(["refine", "fill", "fillHoles", "refineConfident"]), "uri": uri, "version": version,
                "ranges": [[rng.randint(0, 300), rng.randint(0, 400)] for _ in range(rng.choice([1, 1, 2, 1000]))],
                "title": "x"}}),
            ("workspace/executeCommand", {"command": rng.choice(["dcoder.refineSelection", "dcoder.fillRegion",
                                                                 "dcoder.fillHoles", "rm -rf"]),
                                          "arguments": [{"uri": uri, "range": range_, "position": rng_pos(),
                                                         "version": rng.choice([None, version, version - 1])}]}),
            ("workspace/didChangeConfiguration", {"settings": {"dcoder": {"steps": rng.choice([2, 0, "x", 10**9]),
                                                                          "maxTokens": 4}}}),
            ("$/cancelRequest", {"id": rng.randint(0, LSP_CASES)}),
            ("no/such/method", {}),
        ])
        method, params = valid
        if rng.random() < 0.5:
            params = mutate(rng, params)
        notification = method in ("workspace/didChangeConfiguration", "$/cancelRequest")
        yield method, params, not notification if rng.random() < 0.9 else notification


def test_fuzz_the_language_server(exported, tmp_path):
    model = str(exported("dream", "fp32"))
    source = tmp_path / "user.py"
    source.write_text(SAMPLE)
    uri = source.as_uri()
    server = StdioServer()
    try:
        server.initialize(model=model, provider="cpu", steps=2, inlineSteps=2, maxTokens=4, searchTokens=0,
                          preview=True, inlinePreview=True)
        sent = []
        for i, (method, params, is_request) in enumerate(lsp_messages(random.Random(26), uri)):
            if is_request:
                server.send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
                sent.append((i, method, params))
            else:
                server.notify(method, params)
        for i, method, params in sent:
            reply = server.reply(i, timeout=CASE_SECONDS)
            assert ("result" in reply) != ("error" in reply), (method, params, reply)
            if "error" in reply:
                assert "internal error" not in reply["error"]["message"], (method, params, reply)
        ids = [r.get("id") for r in server.replies()]
        assert None not in ids, "every message sent was JSON with a usable id"
        assert sorted(ids, key=str) == sorted(set(ids), key=str), "a request was answered twice"
        assert server.request("end", "shutdown")["result"] is None
        server.notify("exit")
    finally:
        code, stderr = server.finish()
    assert code == 0 and "Traceback" not in stderr, stderr[-3000:]
    assert source.read_text() == SAMPLE
    errors = [m for m in server.notifications("window/showMessage") if m["type"] == 1]
    assert not errors, errors
