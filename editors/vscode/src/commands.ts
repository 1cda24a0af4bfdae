// The editor commands: they read the active editor, call the server's commands, and report.
import * as vscode from "vscode";
import {
  type CommandResult,
  fillHolesArguments,
  fillRegionArguments,
  type Position,
  refineArguments,
  SERVER_COMMANDS,
} from "./protocol";

/** The part of vscode-languageclient's client the commands use. */
export interface Requester {
  sendRequest<R>(method: string, params: unknown): Promise<R>;
}

export interface Log {
  appendLine(line: string): void;
}

const CONTENT_MODIFIED = -32801;
const CANCELLED = [-32800, -32802];

function position(p: vscode.Position): Position {
  return { line: p.line, character: p.character };
}

export async function execute(client: Requester, log: Log, command: string, args: object): Promise<CommandResult | undefined> {
  log.appendLine(`${command} ${JSON.stringify(args)}`);
  try {
    const result = await client.sendRequest<CommandResult>("workspace/executeCommand", { command, arguments: [args] });
    if (!result.applied) {
      const why = result.reason || "the edit was not applied";
      log.appendLine(`${command}: ${why}`);
      void vscode.window.showInformationMessage(`dcoder: ${why}`);
    }
    return result;
  } catch (err) {
    const code = (err as { code?: number }).code;
    const message = err instanceof Error ? err.message : String(err);
    log.appendLine(`${command} failed (${code}): ${message}`);
    if (code === CONTENT_MODIFIED || (code !== undefined && CANCELLED.includes(code))) {
      void vscode.window.showWarningMessage(`dcoder: ${message}`);
    } else {
      void vscode.window.showErrorMessage(`dcoder: ${message}`);
    }
    return undefined;
  }
}

/** The active editor and the running client, or undefined after telling the user what is missing. */
function target(client: () => Requester | undefined): { editor: vscode.TextEditor; requester: Requester } | undefined {
  const editor = vscode.window.activeTextEditor;
  const requester = client();
  if (!editor) {
    void vscode.window.showInformationMessage("dcoder: no active editor");
  } else if (!requester) {
    void vscode.window.showErrorMessage("dcoder: the language server is not running (see the dcoder output)");
  } else {
    return { editor, requester };
  }
  return undefined;
}

export function refineSelection(client: () => Requester | undefined, log: Log, keepConfident: boolean) {
  return async () => {
    const found = target(client);
    if (!found) {
      return undefined;
    }
    const { editor, requester } = found;
    if (editor.selection.isEmpty) {
      void vscode.window.showInformationMessage("dcoder: select the code to refine first");
      return undefined;
    }
    const doc = editor.document;
    const range = { start: position(editor.selection.start), end: position(editor.selection.end) };
    return execute(requester, log, SERVER_COMMANDS.refine, refineArguments(doc.uri.toString(), doc.version, range, keepConfident));
  };
}

/** Fills the innermost syntax region at the cursor, or the region named by the key binding's
 * argument (e.g. "function.inner"). */
export function fillRegion(client: () => Requester | undefined, log: Log) {
  return async (region?: unknown) => {
    const found = target(client);
    if (!found) {
      return undefined;
    }
    const { editor, requester } = found;
    const doc = editor.document;
    const name = typeof region === "string" ? region : undefined;
    return execute(requester, log, SERVER_COMMANDS.fillRegion,
      fillRegionArguments(doc.uri.toString(), doc.version, position(editor.selection.active), name));
  };
}

export function fillHoles(client: () => Requester | undefined, log: Log) {
  return async () => {
    const found = target(client);
    if (!found) {
      return undefined;
    }
    const { editor, requester } = found;
    const doc = editor.document;
    return execute(requester, log, SERVER_COMMANDS.fillHoles, fillHolesArguments(doc.uri.toString(), doc.version));
  };
}

export async function toggleInlineCompletions(): Promise<boolean> {
  const config = vscode.workspace.getConfiguration("dcoder");
  const enabled = !(config.get<boolean>("inlineCompletions.enabled") ?? true);
  await config.update("inlineCompletions.enabled", enabled, vscode.ConfigurationTarget.Global);
  void vscode.window.showInformationMessage(`dcoder: inline completions ${enabled ? "on" : "off"}`);
  return enabled;
}
