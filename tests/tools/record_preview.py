"""Record the live denoising preview as an editor receives it, as a terminal recording.

    python tests/tools/record_preview.py OUT.cast [--model DIR] [--steps N] [--keep-confident]

Starts the real ``dcoder lsp`` server, opens a small Python file, asks for "Refine selection"
(or "Refine selection (keep confident code)") on a function body (``textDocument/codeAction`` + ``codeAction/resolve``) and keeps every
``dcoder/preview`` notification with the time it arrived. Each one is drawn the way the editor
clients draw it: the file with the selection replaced by the partially resolved text (masks as
``░``). OUT is an asciinema v2 recording (``asciinema play OUT``); the frames are also printed
as plain text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

from dcoder_lsp.positions import LineIndex

SAMPLE = '''import math


def distance(a, b):
    """Euclidean distance between two points."""
    dx = b[0] - a[0]
    dy = b[1] - a[1]
    return math.sqrt(dx * dx + dy * dy)


print(distance((0, 0), (3, 4)))
'''
SELECTION = t.Range(t.Position(7, 21), t.Position(7, 38))  # the sum under the square root


def plain(value):
    """pygls hands custom notifications over as named tuples: back to dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def offset(text: str, pos: dict) -> int:
    """Character offset of an LSP position (utf-16 columns, the default encoding) in ``text``."""
    return LineIndex.of(text).offset(pos["line"], pos["character"], "utf-16")


def frame(text: str, preview: dict) -> str:
    """The document as the preview shows it: each span's range replaced by its current text."""
    out = text
    for span in sorted(preview["spans"], key=lambda s: (s["range"]["start"]["line"], s["range"]["start"]["character"]),
                       reverse=True):
        a, b = offset(out, span["range"]["start"]), offset(out, span["range"]["end"])
        out = out[:a] + span["text"] + out[b:]
    return out


async def record(model: str | None, steps: int, title: str) -> tuple[list[tuple[float, dict]], str, str]:
    """(seconds since the request, preview) pairs, the final text, and the model line."""
    client = LanguageClient("dcoder-record", "1")
    previews: list[tuple[float, dict]] = []
    messages: list[str] = []
    start = [0.0]
    client.feature("dcoder/preview")(lambda params: previews.append((time.perf_counter() - start[0], plain(params))))
    client.feature("dcoder/status")(lambda params: None)
    client.feature(t.WINDOW_LOG_MESSAGE)(lambda params: messages.append(params.message))
    client.feature(t.WINDOW_SHOW_MESSAGE)(lambda params: messages.append(params.message))
    settings = {"steps": steps, "preview": True}
    if model:
        settings["model"] = str(Path(model).resolve())
    await client.start_io(sys.executable, "-m", "dcoder", "lsp", "--stdio")
    try:
        await client.initialize_async(t.InitializeParams(capabilities=t.ClientCapabilities(
            text_document=t.TextDocumentClientCapabilities(code_action=t.CodeActionClientCapabilities(
                data_support=True, resolve_support=t.ClientCodeActionResolveOptions(properties=["edit"])))),
            initialization_options=settings))
        client.initialized(t.InitializedParams())
        uri = Path("distance.py").absolute().as_uri()
        client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "python", 1, SAMPLE)))
        actions = await client.text_document_code_action_async(t.CodeActionParams(
            t.TextDocumentIdentifier(uri), SELECTION, t.CodeActionContext(diagnostics=[])))
        action = next((a for a in actions or [] if a.title == title), None)
        if action is None:
            raise SystemExit(f"dcoder: error: the server offered no {title!r} action")
        start[0] = time.perf_counter()
        resolved = await client.code_action_resolve_async(action)
        await asyncio.sleep(0.2)  # the closing preview notification follows the response
        final = SAMPLE
        edits = (resolved.edit.changes or {}).get(uri, []) if resolved.edit else []
        for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
            a = offset(final, {"line": edit.range.start.line, "character": edit.range.start.character})
            b = offset(final, {"line": edit.range.end.line, "character": edit.range.end.character})
            final = final[:a] + edit.new_text + final[b:]
        model_line = next((m.split("model ready: ", 1)[-1] for m in messages if "model ready" in m), "?")
        return previews, final, model_line
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()


def screen(title: str, body: str) -> str:
    """One terminal frame: clear, a title line, the text (CRLF line ends, as a terminal wants)."""
    return "\x1b[H\x1b[2J" + f"\x1b[7m {title} \x1b[0m\r\n" + body.replace("\n", "\r\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/tools/record_preview.py", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the asciinema v2 recording to write (.cast)")
    p.add_argument("--model", metavar="DIR", help="exported or checkpoint folder (default: the built-in model)")
    p.add_argument("--steps", type=int, default=16, help="denoising steps (default 16)")
    p.add_argument("--keep-confident", action="store_true", help="re-mask only the tokens the model finds unlikely")
    args = p.parse_args(argv)
    title = "Refine selection (keep confident code)" if args.keep_confident else "Refine selection"
    previews, final, model = asyncio.run(record(args.model, args.steps, title))
    steps = [(s, pv) for s, pv in previews if not pv.get("done")]
    if not steps:
        raise SystemExit("dcoder: error: no dcoder/preview notification arrived")
    events = [(0.0, screen(f"dcoder: {title}, lines 6-8", SAMPLE))]
    plain = []
    for seconds, pv in steps:
        body = frame(SAMPLE, pv)
        events.append((0.5 + seconds, screen(f"step {pv['step']}", body)))
        plain.append(f"--- step {pv['step']} ({1000 * seconds:.0f} ms)\n{body}")
    last = 0.5 + steps[-1][0]
    events.append((last + 0.3, screen("applied", final)))
    plain.append(f"--- applied\n{final}")
    header = {"version": 2, "width": 72, "height": SAMPLE.count("\n") + 3, "title": f"dcoder preview ({model})",
              "env": {"TERM": "xterm-256color"}}
    lines = [json.dumps(header)] + [json.dumps([round(s, 3), "o", data]) for s, data in events]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"model: {model}")
    print("\n".join(plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
