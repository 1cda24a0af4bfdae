// The dcoder VS Code extension: starts `dcoder lsp --stdio` through vscode-languageclient and adds
// the commands, the denoising preview and the status-bar item on top of it.
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";
import { fillHoles, fillRegion, refineSelection, toggleInlineCompletions } from "./commands";
import { PreviewDecorations } from "./decorations";
import { inlineMiddleware } from "./inline";
import { PREVIEW, type PreviewParams, STATUS, type StatusParams } from "./protocol";
import { inlineEnabled, needsRestart, needsUpdate, serverLaunch, serverSettings } from "./settings";
import { statusView } from "./status";

let client: LanguageClient | undefined;

const config = () => vscode.workspace.getConfiguration("dcoder");

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("dcoder", { log: true });
  const previews = new PreviewDecorations();
  const item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  item.command = "dcoder.showOutput";
  let status: StatusParams | "starting" | "stopped" = "starting";
  const render = () => {
    const view = statusView(status, inlineEnabled(config()));
    item.text = view.text;
    item.tooltip = view.tooltip;
    item.show();
  };

  const start = async () => {
    const launch = serverLaunch(config());
    const serverOptions: ServerOptions = { command: launch.command, args: launch.args, transport: TransportKind.stdio };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: output,
      initializationOptions: serverSettings(config()),
      middleware: {
        provideInlineCompletionItems: inlineMiddleware(() => inlineEnabled(config())),
        workspace: {
          // The server asks for section "dcoder": answer with the server's settings only.
          configuration: async (params, token, next) => {
            const answer = await next(params, token);
            if (!Array.isArray(answer)) {
              return answer;
            }
            return params.items.map((it, i) => (it.section === "dcoder" ? serverSettings(config()) : answer[i]));
          },
        },
      },
    };
    const started = new LanguageClient("dcoder", "dcoder", serverOptions, clientOptions);
    client = started;
    started.onNotification(PREVIEW, (params: PreviewParams) => previews.show(params));
    started.onNotification(STATUS, (params: StatusParams) => {
      status = params;
      render();
    });
    started.onDidChangeState((e) => {
      if (e.newState === State.Stopped) {
        status = "stopped";
        render();
      }
    });
    status = "starting";
    render();
    output.appendLine(`starting ${launch.command} ${launch.args.join(" ")} --stdio`);
    try {
      await started.start();
    } catch (err) {
      status = "stopped";
      render();
      const message = err instanceof Error ? err.message : String(err);
      output.appendLine(`the server did not start: ${message}`);
      void vscode.window.showErrorMessage(
        `dcoder: cannot start the language server (${launch.command}): ${message}. Set "dcoder.server.path".`);
    }
  };

  const stop = async () => {
    const running = client;
    client = undefined;
    if (running?.needsStop()) {
      await running.stop();
    }
  };

  const running = () => (client?.state === State.Running ? client : undefined);
  context.subscriptions.push(
    output,
    previews,
    item,
    vscode.commands.registerCommand("dcoder.refine", refineSelection(running, output, false)),
    vscode.commands.registerCommand("dcoder.refineKeepConfident", refineSelection(running, output, true)),
    vscode.commands.registerCommand("dcoder.fill", fillRegion(running, output)),
    vscode.commands.registerCommand("dcoder.holes", fillHoles(running, output)),
    vscode.commands.registerCommand("dcoder.toggleInlineCompletions", toggleInlineCompletions),
    vscode.commands.registerCommand("dcoder.showOutput", () => output.show(true)),
    vscode.commands.registerCommand("dcoder.restart", async () => {
      await stop();
      await start();
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (needsRestart((s) => e.affectsConfiguration(s))) {
        await stop();
        await start();
      } else if (needsUpdate((s) => e.affectsConfiguration(s)) && running()) {
        await running()?.sendNotification(DidChangeConfigurationNotification.type, {
          settings: { dcoder: serverSettings(config()) },
        });
      }
      render();
    }),
    { dispose: () => void stop() },
  );
  await start();
}

export function deactivate(): Thenable<void> | undefined {
  const running = client;
  client = undefined;
  return running?.needsStop() ? running.stop() : undefined;
}
