// The real `dcoder lsp` server driven over JSON-RPC the way vscode-languageclient drives it: the
// extension's own settings, command arguments and preview layout against a tiny random model.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { createMessageConnection, type MessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import { frameFor, layoutSpan } from "../src/preview";
import {
  ACTION_KINDS,
  fillHolesArguments,
  type PreviewParams,
  type Range,
  refineArguments,
  SERVER_COMMANDS,
  type StatusParams,
} from "../src/protocol";
import { serverSettings } from "../src/settings";
import { defaults } from "./defaults";

// A path is taken relative to this directory (the server runs in the repository root).
const given = process.env.DCODER_PYTHON || "python3";
const PYTHON = given.includes("/") ? resolve(given) : given;
const ROOT = resolve(process.cwd(), "../..");

// The same tiny Dream-style checkpoint as tests/conftest.py: random weights, so what it writes is
// noise; where it goes, and when, is what these tests check.
const MAKE_MODEL = `
import argparse, difflib, inspect, json, sys
from pathlib import Path
from tokenizers import Tokenizer
from dcoder.engine.model_config import ModelConfig
from dcoder.evaluation.synthetic import train_tokenizer, write_random_checkpoint
out = Path(sys.argv[1])
(out / "tok").mkdir()
tok = train_tokenizer([inspect.getsource(m) for m in (argparse, difflib, json)], 600, out / "tok")
vocab = Tokenizer.from_file(str(tok)).get_vocab_size(with_added_tokens=True)
cfg = ModelConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=512, rope_theta=10000.0, model_type="Dream", shift_logits=True)
print(write_random_checkpoint(out / "model", cfg, tok))
`;

// The sample file the Python, Neovim and VS Code tests share.
const CODE = readFileSync(join(ROOT, "tests", "data", "sample.py"), "utf8");

/** What vscode-languageclient announces for the features the extension uses. */
const CAPABILITIES = {
  general: { positionEncodings: ["utf-16"] },
  window: { workDoneProgress: true, showMessage: {} },
  workspace: {
    applyEdit: true,
    configuration: true,
    didChangeConfiguration: { dynamicRegistration: true },
    workspaceEdit: { documentChanges: true, resourceOperations: ["create", "rename", "delete"], failureHandling: "textOnlyTransactional" },
    executeCommand: { dynamicRegistration: true },
  },
  textDocument: {
    synchronization: { dynamicRegistration: true, willSave: true, willSaveWaitUntil: true, didSave: true },
    inlineCompletion: { dynamicRegistration: true },
    completion: { completionItem: { snippetSupport: true } },
    codeAction: {
      dynamicRegistration: true,
      isPreferredSupport: true,
      disabledSupport: true,
      dataSupport: true,
      resolveSupport: { properties: ["edit"] },
      codeActionLiteralSupport: { codeActionKind: { valueSet: ["", "quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite", "source", "source.organizeImports"] } },
      honorsChangeAnnotations: true,
    },
  },
};

function offsetIn(text: string, line: number, character: number): number {
  return text.split("\n").slice(0, line).reduce((n, l) => n + l.length + 1, 0) + character;
}

interface TextEdit {
  range: Range;
  newText: string;
}

/** The client's copy of the open documents (utf-16 columns are JavaScript string indices). */
class Documents {
  readonly text = new Map<string, string>();
  readonly version = new Map<string, number>();

  offset(uri: string, line: number, character: number): number {
    return offsetIn(this.text.get(uri)!, line, character);
  }

  apply(uri: string, edits: TextEdit[]): void {
    const spans = edits.map((e) => [this.offset(uri, e.range.start.line, e.range.start.character),
      this.offset(uri, e.range.end.line, e.range.end.character), e.newText] as const);
    let text = this.text.get(uri)!;
    for (const [a, b, t] of spans.sort((x, y) => y[0] - x[0])) {
      text = text.slice(0, a) + t + text.slice(b);
    }
    this.text.set(uri, text);
  }
}

describe("the dcoder language server over JSON-RPC", () => {
  let work: string;
  let server: ChildProcess;
  let conn: MessageConnection;
  let initResult: any;
  const docs = new Documents();
  const previews: PreviewParams[] = [];
  const statuses: StatusParams[] = [];
  const shown: string[] = [];
  const applied: any[] = [];

  const open = (name: string, text: string): string => {
    const uri = `file:///work/${name}`;
    docs.text.set(uri, text);
    docs.version.set(uri, 1);
    void conn.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId: "python", version: 1, text } });
    return uri;
  };

  const change = (uri: string, text: string): number => {
    const version = docs.version.get(uri)! + 1;
    docs.text.set(uri, text);
    docs.version.set(uri, version);
    void conn.sendNotification("textDocument/didChange", { textDocument: { uri, version }, contentChanges: [{ text }] });
    return version;
  };

  const until = async (condition: () => boolean, what: string) => {
    for (let i = 0; i < 3000 && !condition(); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(condition(), `never happened: ${what}`);
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "dcoder-vscode-"));
    const model = execFileSync(PYTHON, ["-c", MAKE_MODEL, work], { cwd: ROOT, encoding: "utf8" }).trim();
    server = spawn(PYTHON, ["-m", "dcoder", "lsp", "--stdio"], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
    conn = createMessageConnection(new StreamMessageReader(server.stdout!), new StreamMessageWriter(server.stdin!));
    conn.onNotification("dcoder/preview", (p: PreviewParams) => void previews.push(p));
    conn.onNotification("dcoder/status", (p: StatusParams) => void statuses.push(p));
    conn.onNotification("window/showMessage", (p: { message: string }) => void shown.push(p.message));
    conn.onNotification("window/logMessage", () => undefined);
    conn.onNotification("$/progress", () => undefined);
    conn.onRequest("window/workDoneProgress/create", () => null);
    conn.onRequest("workspace/applyEdit", (params: any): { applied: boolean; failureReason?: string } => {
      applied.push(params);
      const [change] = params.edit.documentChanges;
      const uri = change.textDocument.uri;
      // What vscode-languageclient does: refuse an edit computed for another version.
      if (change.textDocument.version !== docs.version.get(uri)) {
        return { applied: false, failureReason: "version mismatch" };
      }
      docs.apply(uri, change.edits);
      return { applied: true };
    });
    conn.listen();
    initResult = await conn.sendRequest("initialize", {
      processId: process.pid,
      rootUri: null,
      capabilities: CAPABILITIES,
      initializationOptions: serverSettings(defaults({ model, provider: "cpu", steps: 8 })),
    });
    await conn.sendNotification("initialized", {});
    await until(() => statuses.length > 0, "a dcoder/status after initialized");
  });

  after(async () => {
    await conn.sendRequest("shutdown");
    await conn.sendNotification("exit");
    await new Promise((r) => (server.exitCode !== null ? r(null) : server.once("exit", r)));
    conn.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it("accepts the extension's settings and offers what it uses", () => {
    assert.deepEqual(shown, [], "the server complained about the settings package.json declares");
    const caps = initResult.capabilities;
    assert.ok(caps.inlineCompletionProvider);
    assert.equal(caps.codeActionProvider.resolveProvider, true);
    assert.deepEqual([...caps.executeCommandProvider.commands].sort(), Object.values(SERVER_COMMANDS).sort());
    assert.equal(statuses[0].state, "idle");
    assert.equal(statuses[0].provider, "cpu");
  });

  it("completes inline at the cursor", async () => {
    const uri = open("inline.py", CODE);
    const offered: string[] = [];
    for (const [line, character] of [[2, 4], [11, 8], [4, 0], [6, 13]]) {
      const result: any = await conn.sendRequest("textDocument/inlineCompletion", {
        textDocument: { uri }, position: { line, character }, context: { triggerKind: 1 },
      });
      for (const item of result.items) {
        assert.deepEqual(item.range, { start: { line, character }, end: { line, character } });
        offered.push(item.insertText);
      }
    }
    assert.ok(offered.some((t) => t.trim()), "the model offered nothing anywhere");
    assert.ok(statuses.some((s) => s.busy), "the status never showed the server busy");
    assert.ok(statuses.some((s) => s.model?.includes("model")), "the status never named the model");
  });

  it("offers refine as a code action and computes its edit on resolve, with previews", async () => {
    const uri = open("action.py", CODE);
    const selection = { start: { line: 9, character: 4 }, end: { line: 11, character: 25 } };
    const actions: any[] = await conn.sendRequest("textDocument/codeAction", {
      textDocument: { uri }, range: selection, context: { diagnostics: [] },
    });
    const refine = actions.find((a) => a.title === "Refine selection");
    assert.ok(refine, `no refine action among ${actions.map((a) => a.title)}`);
    assert.equal(refine.kind, ACTION_KINDS.refine);
    assert.equal(refine.edit, undefined, "the edit must wait for codeAction/resolve");
    assert.ok(actions.some((a) => a.kind === ACTION_KINDS.fill), "no fill-region action at the cursor");

    previews.length = 0;
    const resolved: any = await conn.sendRequest("codeAction/resolve", refine);
    const [edit] = resolved.edit.documentChanges;
    assert.deepEqual(edit.textDocument, { uri, version: 1 });
    for (const e of edit.edits) {
      assert.ok(e.range.start.line >= 9 && e.range.end.line <= 11, JSON.stringify(e.range));
    }
    await until(() => previews.some((p) => p.done), "the final dcoder/preview");
    const steps = previews.filter((p) => !p.done);
    assert.ok(steps.length >= 2, "fewer than two preview steps");
    for (const p of steps) {
      const frame = frameFor(p, 1);
      assert.ok(frame, "a preview for the current version was not drawn");
      assert.deepEqual(frame.dimmed, [selection]);
      for (const ghost of layoutSpan(p.spans[0])) {
        assert.ok(ghost.line >= 9 && ghost.line <= 11);
      }
    }
    assert.equal(previews.at(-1)!.done, true);
  });

  it("runs the refine command and applies its edit at the right version", async () => {
    const uri = open("command.py", CODE);
    const range = { start: { line: 2, character: 4 }, end: { line: 2, character: 16 } };
    applied.length = 0;
    const result: any = await conn.sendRequest("workspace/executeCommand", {
      command: SERVER_COMMANDS.refine, arguments: [refineArguments(uri, 1, range)],
    });
    assert.equal(result.applied, true, JSON.stringify(result));
    assert.equal(applied.length, 1);
    assert.equal(applied[0].edit.documentChanges[0].textDocument.version, 1);
    const text = docs.text.get(uri)!;
    assert.notEqual(text, CODE);
    // Only the selection changed: the text before and after it is intact.
    assert.ok(text.startsWith(CODE.slice(0, offsetIn(CODE, 2, 4))));
    assert.ok(text.endsWith(CODE.slice(offsetIn(CODE, 2, 16))));
  });

  it("refuses a command for a text that changed", async () => {
    const uri = open("stale.py", CODE);
    change(uri, CODE.replace("a + b", "a - b"));
    await assert.rejects(
      conn.sendRequest("workspace/executeCommand", {
        command: SERVER_COMMANDS.refine,
        arguments: [refineArguments(uri, 1, { start: { line: 2, character: 4 }, end: { line: 2, character: 16 } })],
      }),
      (err: any) => err.code === -32801,
    );
    assert.equal(docs.text.get(uri), CODE.replace("a + b", "a - b"));
  });

  it("fills every hole with one command", async () => {
    const uri = open("holes.py", "def add(a, b):\n    return <|mask|>\n\n\nx = add(<|mask|>)\n");
    applied.length = 0;
    const result: any = await conn.sendRequest("workspace/executeCommand", {
      command: SERVER_COMMANDS.fillHoles, arguments: [fillHolesArguments(uri, 1)],
    });
    assert.equal(result.applied, true);
    assert.equal(applied.length, 1);
    assert.ok(!docs.text.get(uri)!.includes("<|mask|>"));
    assert.ok(docs.text.get(uri)!.startsWith("def add(a, b):\n    return "));
  });
});
