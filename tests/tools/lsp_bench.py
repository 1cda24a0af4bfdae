"""Editor latency of the language server, measured the way an editor sees it: the real
``dcoder lsp`` process over JSON-RPC on stdio.

    python tests/tools/lsp_bench.py --model DIR [--runs 40] [--provider cpu] [--json OUT]

Figures (milliseconds, from sending the request to reading the answer, after one warm-up
request that loads the model):

- inline completion p50/p95 in a 300-line and a 3,000-line Python file: the cursor goes to a
  random place in a random line, the rest of that line is deleted (as if just typed), then
  ``textDocument/inlineCompletion`` is asked for;
- "Refine selection" of 10 lines p50: ``textDocument/codeAction`` plus ``codeAction/resolve``.

The files are the first 300 and 3,000 lines of ``--source`` (default: the standard library's
inspect.py). Figures are printed as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect as stdlib_inspect
import json
import random
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as t
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

SIZES = (300, 3000)
REFINE_LINES = 10


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(ms: list[float]) -> dict:
    return {"runs": len(ms), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 0.95), 1),
            "max_ms": round(max(ms), 1)}


def code_lines(lines: list[str], rng: random.Random, count: int, min_len: int = 12) -> list[int]:
    """Line numbers of ``count`` lines with some code on them (not comments)."""
    candidates = [i for i, ln in enumerate(lines) if len(ln.strip()) >= min_len and not ln.lstrip().startswith("#")]
    return [rng.choice(candidates) for _ in range(count)]


class Session:
    def __init__(self, client: LanguageClient):
        self.client = client
        self.versions: dict[str, int] = {}

    def open(self, name: str, text: str) -> str:
        uri = Path(name).absolute().as_uri()
        self.versions[uri] = 1
        self.client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "python", 1, text)))
        return uri

    def replace(self, uri: str, text: str) -> None:
        self.versions[uri] += 1
        self.client.text_document_did_change(t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(self.versions[uri], uri), [t.TextDocumentContentChangeWholeDocument(text)]))

    async def inline(self, uri: str, line: int, col: int) -> tuple[float, bool]:
        params = t.InlineCompletionParams(
            context=t.InlineCompletionContext(trigger_kind=t.InlineCompletionTriggerKind.Automatic),
            text_document=t.TextDocumentIdentifier(uri), position=t.Position(line, col))
        start = time.perf_counter()
        result = await self.client.text_document_inline_completion_async(params)
        return 1000 * (time.perf_counter() - start), bool(result and result.items)

    async def refine(self, uri: str, line: int) -> float | str:
        """Milliseconds, or the server's error message."""
        rng = t.Range(t.Position(line, 0), t.Position(line + REFINE_LINES, 0))
        start = time.perf_counter()
        actions = await self.client.text_document_code_action_async(t.CodeActionParams(
            t.TextDocumentIdentifier(uri), rng, t.CodeActionContext(diagnostics=[], only=["refactor.rewrite.dcoder.refine"])))
        action = next((a for a in actions or [] if a.title == "Refine selection"), None)
        if action is None:
            return "no Refine selection action offered"
        try:
            await self.client.code_action_resolve_async(action)
        except JsonRpcException as exc:
            return str(exc)
        return 1000 * (time.perf_counter() - start)


async def inline_figures(session: Session, lines: list[str], runs: int, rng: random.Random) -> dict:
    text = "".join(lines)
    uri = session.open(f"bench_{len(lines)}.py", text)
    times, offered = [], 0
    for n in code_lines(lines, rng, runs):
        line = lines[n].rstrip("\n")
        indent = len(line) - len(line.lstrip())
        col = rng.randint(indent + 1, len(line))
        typed = lines[:n] + [line[:col] + "\n"] + lines[n + 1:]
        session.replace(uri, "".join(typed))
        ms, got = await session.inline(uri, n, col)
        times.append(ms)
        offered += got
    return {**summary(times), "offered": offered}


async def refine_figures(session: Session, lines: list[str], runs: int, rng: random.Random) -> dict:
    uri = session.open("bench_refine.py", "".join(lines))
    starts = [rng.randrange(0, len(lines) - REFINE_LINES) for _ in range(runs)]
    results = [await session.refine(uri, s) for s in starts]
    times = [r for r in results if isinstance(r, float)]
    failed = sorted({r for r in results if isinstance(r, str)})
    return {**(summary(times) if times else {"runs": 0}), **({"errors": failed} if failed else {})}


def read_lines(source: Path, count: int) -> list[str]:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    if len(lines) < count:
        sys.exit(f"dcoder: error: {source} has {len(lines)} lines, the benchmark needs {count}")
    return lines[:count]


async def run(args) -> dict:
    source = Path(args.source)
    files = {n: read_lines(source, n) for n in SIZES}
    settings = {"provider": args.provider, "steps": args.steps, "preview": False, "inlinePreview": False}
    if args.model:
        settings["model"] = str(Path(args.model).resolve())
    if args.threshold is not None:
        settings["threshold"] = args.threshold
    if args.scope_bias is not None:
        settings["scopeBias"] = args.scope_bias
    folders = [t.WorkspaceFolder(Path(args.workspace).resolve().as_uri(), "bench")] if args.workspace else None
    client = LanguageClient("dcoder-bench", "1")
    messages: list[str] = []
    client.feature(t.WINDOW_SHOW_MESSAGE)(lambda params: messages.append(params.message))
    client.feature(t.WINDOW_LOG_MESSAGE)(lambda params: messages.append(params.message))
    client.feature("dcoder/status")(lambda params: None)
    await client.start_io(sys.executable, "-m", "dcoder", "lsp", "--stdio")
    try:
        await client.initialize_async(t.InitializeParams(capabilities=t.ClientCapabilities(
            text_document=t.TextDocumentClientCapabilities(
                inline_completion=t.InlineCompletionClientCapabilities(),
                code_action=t.CodeActionClientCapabilities(
                    data_support=True, resolve_support=t.ClientCodeActionResolveOptions(properties=["edit"])))),
            initialization_options=settings, workspace_folders=folders))
        client.initialized(t.InitializedParams())
        session = Session(client)
        rng = random.Random(args.seed)

        warm = session.open("bench_warmup.py", "".join(files[SIZES[0]]))
        start = time.perf_counter()
        await session.inline(warm, 10, 0)
        load_s = time.perf_counter() - start
        model = next((m for m in messages if "model ready" in m), None)
        if model is None:
            sys.exit("dcoder: error: the server did not load the model: " + " | ".join(messages[-3:]))

        figures = {"model": model.split("model ready: ", 1)[-1], "settings": settings, "source": str(source),
                   "workspace": next((m for m in messages if "workspace: indexed" in m), None),
                   "first_request_s": round(load_s, 2)}
        for n in SIZES:
            figures[f"inline_{n}_lines"] = await inline_figures(session, files[n], args.runs, rng)
        figures[f"refine_{REFINE_LINES}_lines"] = await refine_figures(session, files[SIZES[0]], args.refine_runs, rng)
        warnings = [m for m in messages if "failed to start" in m]
        if warnings:
            figures["warnings"] = warnings
        return figures
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/tools/lsp_bench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", metavar="DIR", help="exported or checkpoint folder (default: the built-in model)")
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--steps", type=int, default=32, help="denoising steps (server default 32)")
    p.add_argument("--threshold", type=float, help="confidence-threshold unmasking instead of fixed steps")
    p.add_argument("--runs", type=int, default=40, help="inline completions per file (default 40)")
    p.add_argument("--refine-runs", type=int, default=10, help="refine selections (default 10)")
    p.add_argument("--source", default=stdlib_inspect.getsourcefile(stdlib_inspect),
                   help="Python file whose first 300 and 3,000 lines are used (default: stdlib inspect.py)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scope-bias", type=float, metavar="X", help="the scopeBias setting (default: the server's)")
    p.add_argument("--workspace", metavar="DIR",
                   help="workspace folder the server indexes for similar code (default: none, so no workspace context)")
    p.add_argument("--json", metavar="OUT", help="also write the figures to OUT")
    args = p.parse_args(argv)
    if args.runs < 1 or args.refine_runs < 1:
        p.error("--runs and --refine-runs must be at least 1")
    figures = asyncio.run(run(args))
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
