// The extension's logic against the mocked `vscode` module.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { fillHoles, fillRegion, refineSelection, toggleInlineCompletions, type Requester } from "../src/commands";
import { PreviewDecorations } from "../src/decorations";
import { inlineMiddleware } from "../src/inline";
import { frameFor, layoutSpan, MAX_GHOST } from "../src/preview";
import type { PreviewParams, StatusParams } from "../src/protocol";
import { inlineEnabled, needsRestart, needsUpdate, RENAMED_SETTINGS, SERVER_SETTINGS, serverLaunch, serverSettings } from "../src/settings";
import { statusView } from "../src/status";
import { defaults } from "./defaults";
import * as mock from "./mock/vscode";

const contributed = JSON.parse(readFileSync("package.json", "utf8")).contributes.configuration.properties;

const range = (l0: number, c0: number, l1: number, c1: number) => ({
  start: { line: l0, character: c0 },
  end: { line: l1, character: c1 },
});

class FakeClient implements Requester {
  readonly sent: { method: string; params: any }[] = [];
  constructor(private readonly answer: (params: any) => unknown) {}
  async sendRequest<R>(method: string, params: unknown): Promise<R> {
    this.sent.push({ method, params });
    return this.answer(params) as R;
  }
}

const log = { lines: [] as string[], appendLine(line: string) { this.lines.push(line); } };

beforeEach(() => {
  mock.messages.length = 0;
  mock.settings.clear();
  mock.window.activeTextEditor = undefined;
  mock.window.visibleTextEditors = [];
});

describe("settings", () => {
  it("contributes every server setting and nothing the extension does not read", () => {
    const clientOnly = ["dcoder.server.path", "dcoder.server.args", "dcoder.inlineCompletions.enabled"];
    const forwarded = [...SERVER_SETTINGS, ...Object.values(RENAMED_SETTINGS)].map((k) => `dcoder.${k}`);
    assert.deepEqual(Object.keys(contributed).sort(), [...forwarded, ...clientOnly].sort());
  });

  it("passes the server its settings only, an empty model folder as null", () => {
    const sent = serverSettings(defaults({ model: "", steps: 12 }));
    assert.deepEqual(Object.keys(sent).sort(), [...SERVER_SETTINGS, "server", "serverToken"].sort());
    assert.equal(sent.model, null);
    assert.equal(sent.steps, 12);
    assert.equal(sent.provider, "auto");
    assert.equal(sent.threshold, null);
    assert.equal(serverSettings(defaults({ model: "/m" })).model, "/m");
    assert.equal(sent.server, null);
    assert.equal(sent.serverToken, null);
  });

  it("sends dcoder.remote.url and .token as the server's server and serverToken", () => {
    const sent = serverSettings(defaults({ "remote.url": " http://gpu-box:8080 ", "remote.token": "t0ken" }));
    assert.equal(sent.server, "http://gpu-box:8080");
    assert.equal(sent.serverToken, "t0ken");
    assert.equal(serverSettings(defaults({ "remote.url": "", "remote.token": "  " })).server, null);
    assert.equal(serverSettings(defaults({ "remote.token": "  " })).serverToken, null);
    assert.ok(!("remote.url" in sent) && !("remote" in sent));
  });

  it("launches dcoder lsp unless told otherwise", () => {
    assert.deepEqual(serverLaunch(defaults()), { command: "dcoder", args: ["lsp"] });
    assert.deepEqual(serverLaunch(defaults({ "server.path": "  " })), { command: "dcoder", args: ["lsp"] });
    assert.deepEqual(serverLaunch(defaults({ "server.path": "/venv/bin/python", "server.args": ["-m", "dcoder", "lsp"] })),
      { command: "/venv/bin/python", args: ["-m", "dcoder", "lsp"] });
  });

  it("restarts for server changes, tells the server about model changes", () => {
    assert.ok(needsRestart((s) => s === "dcoder.server"));
    assert.ok(!needsRestart((s) => s === "dcoder.steps"));
    assert.ok(needsUpdate((s) => s === "dcoder.steps"));
    // the remote server is a setting of the running language server: no restart
    assert.ok(needsUpdate((s) => s === "dcoder.remote.url") && !needsRestart((s) => s === "dcoder.remote.url"));
    assert.ok(!needsUpdate((s) => s === "dcoder.inlineCompletions.enabled"));
    assert.equal(inlineEnabled(defaults()), true);
    assert.equal(inlineEnabled(defaults({ "inlineCompletions.enabled": false })), false);
  });
});

describe("status bar", () => {
  const status: StatusParams = { state: "idle", busy: false, model: "tiny (torch, cpu)", provider: "cpu", message: null };

  it("shows state, model and provider", () => {
    const view = statusView(status, true);
    assert.equal(view.text, "$(sparkle) dcoder");
    assert.match(view.tooltip, /model: tiny \(torch, cpu\)/);
    assert.match(view.tooltip, /provider: cpu/);
    assert.equal(statusView({ ...status, state: "busy", busy: true }, true).text, "$(sync~spin) dcoder");
  });

  it("shows errors and the inline toggle", () => {
    const view = statusView({ ...status, state: "error", model: null, message: "cannot load the model" }, false);
    assert.equal(view.text, "$(error) dcoder (inline off)");
    assert.match(view.tooltip, /model: built-in/);
    assert.match(view.tooltip, /cannot load the model/);
    assert.match(statusView("stopped", true).tooltip, /not running/);
  });
});

describe("preview layout", () => {
  it("puts preview line i after span line i", () => {
    assert.deepEqual(layoutSpan({ range: range(2, 4, 4, 9), text: "a = 1\nb = 2\nc = 3" }),
      [{ line: 2, text: "a = 1" }, { line: 3, text: "b = 2" }, { line: 4, text: "c = 3" }]);
  });

  it("joins lines beyond the span onto its last line", () => {
    assert.deepEqual(layoutSpan({ range: range(5, 0, 6, 0), text: "x\ny\nz" }),
      [{ line: 5, text: "x" }, { line: 6, text: "y ⏎ z" }]);
    assert.deepEqual(layoutSpan({ range: range(1, 3, 1, 3), text: "p\r\nq" }), [{ line: 1, text: "p ⏎ q" }]);
  });

  it("leaves later span lines bare when the preview is shorter", () => {
    assert.deepEqual(layoutSpan({ range: range(0, 0, 3, 0), text: "only" }), [{ line: 0, text: "only" }]);
  });

  it("clips long lines", () => {
    const [ghost] = layoutSpan({ range: range(0, 0, 0, 1), text: "x".repeat(500) });
    assert.equal(ghost.text.length, MAX_GHOST);
    assert.ok(ghost.text.endsWith("…"));
  });

  it("draws nothing for another version or a finished run", () => {
    const p: PreviewParams = { uri: "file:///a.py", version: 3, step: 1, done: false, spans: [{ range: range(0, 0, 0, 2), text: "ok" }] };
    assert.deepEqual(frameFor(p, 3), { dimmed: [range(0, 0, 0, 2)], ghosts: [{ line: 0, text: "ok" }] });
    assert.equal(frameFor(p, 4), null);
    assert.equal(frameFor({ ...p, done: true, spans: [] }, 3), null);
  });
});

describe("preview decorations", () => {
  it("dims the span and shows the text, then clears", () => {
    const doc = new mock.MockDocument("file:///a.py", "def f():\n    return 1\n");
    const editor = new mock.MockEditor(doc);
    mock.window.visibleTextEditors = [editor];
    const previews = new PreviewDecorations();
    const [dimmed, ghost] = mock.window.decorationTypes.slice(-2);
    previews.show({ uri: "file:///a.py", version: 1, step: 2, done: false, spans: [{ range: range(1, 4, 1, 12), text: "return ░░" }] });
    const [drawn] = editor.decorations.get(dimmed.key) as mock.Range[];
    assert.deepEqual([drawn.start, drawn.end], [new mock.Position(1, 4), new mock.Position(1, 12)]);
    const [after] = editor.decorations.get(ghost.key) as any[];
    assert.equal(after.renderOptions.after.contentText, "return ░░");
    assert.deepEqual(after.range.start, new mock.Position(1, 12));

    previews.show({ uri: "file:///a.py", version: 1, done: true, spans: [] });
    assert.deepEqual(editor.decorations.get(dimmed.key), []);
    assert.deepEqual(editor.decorations.get(ghost.key), []);
    previews.dispose();
    assert.ok(dimmed.disposed && ghost.disposed);
  });

  it("ignores a preview of an older text", () => {
    const doc = new mock.MockDocument("file:///b.py", "x = 1\n");
    doc.edit("x = 12\n");
    const editor = new mock.MockEditor(doc);
    mock.window.visibleTextEditors = [editor];
    new PreviewDecorations().show({ uri: "file:///b.py", version: 1, step: 1, done: false, spans: [{ range: range(0, 0, 0, 5), text: "y" }] });
    assert.equal(editor.decorations.size, 0);
  });
});

describe("inline completions", () => {
  const token = { isCancellationRequested: false } as any;
  const items = [{ insertText: "return a + b" }] as any;

  it("asks the server only when enabled", async () => {
    let asked = 0;
    const next = async () => { asked += 1; return items; };
    const doc = new mock.MockDocument("file:///c.py", "def f():\n    ");
    assert.equal(await inlineMiddleware(() => false)(doc as any, new mock.Position(1, 4) as any, {} as any, token, next), null);
    assert.equal(asked, 0);
    assert.equal(await inlineMiddleware(() => true)(doc as any, new mock.Position(1, 4) as any, {} as any, token, next), items);
    assert.equal(asked, 1);
  });

  it("drops a completion for a text the user changed meanwhile", async () => {
    const doc = new mock.MockDocument("file:///d.py", "x = ");
    const next = async () => { doc.edit("x = 4"); return items; };
    assert.equal(await inlineMiddleware(() => true)(doc as any, new mock.Position(0, 4) as any, {} as any, token, next), null);
  });

  it("drops a cancelled request's completion", async () => {
    const doc = new mock.MockDocument("file:///e.py", "x = ");
    const cancelled = { isCancellationRequested: false } as any;
    const next = async () => { cancelled.isCancellationRequested = true; return items; };
    assert.equal(await inlineMiddleware(() => true)(doc as any, new mock.Position(0, 4) as any, {} as any, cancelled, next), null);
  });
});

describe("commands", () => {
  function editorWith(text: string, anchor: [number, number], active: [number, number]) {
    const doc = new mock.MockDocument("file:///w/f.py", text);
    doc.edit(text); // version 2
    const editor = new mock.MockEditor(doc, new mock.Selection(new mock.Position(...anchor), new mock.Position(...active)));
    mock.window.activeTextEditor = editor;
    return editor;
  }

  it("refines the selection at the document's version", async () => {
    editorWith("a = 1\nb = 2\n", [1, 5], [0, 0]);
    const client = new FakeClient(() => ({ applied: true }));
    assert.deepEqual(await refineSelection(() => client, log, true)(), { applied: true });
    assert.deepEqual(client.sent, [{
      method: "workspace/executeCommand",
      params: { command: "dcoder.refineSelection", arguments: [{ uri: "file:///w/f.py", version: 2, range: range(0, 0, 1, 5), keepConfident: true }] },
    }]);
    assert.deepEqual(mock.messages, []);
  });

  it("asks for a selection first", async () => {
    editorWith("a = 1\n", [0, 2], [0, 2]);
    const client = new FakeClient(() => ({ applied: true }));
    assert.equal(await refineSelection(() => client, log, false)(), undefined);
    assert.equal(client.sent.length, 0);
    assert.match(mock.messages[0].text, /select the code/);
  });

  it("says when the server is not running", async () => {
    editorWith("a = 1\n", [0, 0], [0, 2]);
    assert.equal(await refineSelection(() => undefined, log, false)(), undefined);
    assert.equal(mock.messages[0].level, "error");
  });

  it("fills the region at the cursor, or the one named", async () => {
    editorWith("def f():\n    pass\n", [1, 6], [1, 6]);
    const client = new FakeClient(() => ({ applied: false, reason: "nothing to change" }));
    await fillRegion(() => client, log)();
    await fillRegion(() => client, log)("function.inner");
    assert.deepEqual(client.sent.map((s) => s.params.arguments[0]), [
      { uri: "file:///w/f.py", version: 2, position: { line: 1, character: 6 } },
      { uri: "file:///w/f.py", version: 2, position: { line: 1, character: 6 }, region: "function.inner" },
    ]);
    assert.deepEqual(mock.messages.map((m) => m.text), ["dcoder: nothing to change", "dcoder: nothing to change"]);
  });

  it("fills the holes and reports a stale document as a warning", async () => {
    editorWith("x = <|mask|>\n", [0, 0], [0, 0]);
    const client = new FakeClient(() => {
      throw Object.assign(new Error("the document changed"), { code: -32801 });
    });
    assert.equal(await fillHoles(() => client, log)(), undefined);
    assert.equal(client.sent[0].params.command, "dcoder.fillHoles");
    assert.deepEqual(client.sent[0].params.arguments, [{ uri: "file:///w/f.py", version: 2 }]);
    assert.deepEqual(mock.messages, [{ level: "warning", text: "dcoder: the document changed" }]);
  });

  it("toggles inline completions in the user settings", async () => {
    assert.equal(await toggleInlineCompletions(), false);
    assert.equal(mock.settings.get("dcoder.inlineCompletions.enabled"), false);
    assert.equal(await toggleInlineCompletions(), true);
  });
});
