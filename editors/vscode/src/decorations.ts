// Draws dcoder/preview frames in the visible editors of the previewed document.
import * as vscode from "vscode";
import { frameFor } from "./preview";
import type { PreviewParams, Range } from "./protocol";

function toRange(r: Range): vscode.Range {
  return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}

export class PreviewDecorations implements vscode.Disposable {
  private readonly dimmed = vscode.window.createTextEditorDecorationType({ opacity: "0.4" });
  private readonly ghost = vscode.window.createTextEditorDecorationType({
    after: { color: new vscode.ThemeColor("editorGhostText.foreground"), fontStyle: "italic", margin: "0 0 0 1em" },
  });
  private readonly drawn = new Set<string>(); // URIs with a frame on screen

  show(params: PreviewParams): void {
    const editors = vscode.window.visibleTextEditors.filter((e) => e.document.uri.toString() === params.uri);
    if (editors.length === 0) {
      return;
    }
    const frame = frameFor(params, editors[0].document.version);
    if (frame === null) {
      this.clear(params.uri);
      return;
    }
    const ghosts = frame.ghosts.map((g) => {
      const line = editors[0].document.lineAt(g.line).range.end;
      return { range: new vscode.Range(line, line), renderOptions: { after: { contentText: g.text } } };
    });
    for (const editor of editors) {
      editor.setDecorations(this.dimmed, frame.dimmed.map(toRange));
      editor.setDecorations(this.ghost, ghosts);
    }
    this.drawn.add(params.uri);
  }

  clear(uri: string): void {
    if (!this.drawn.delete(uri)) {
      return;
    }
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document.uri.toString() === uri) {
        editor.setDecorations(this.dimmed, []);
        editor.setDecorations(this.ghost, []);
      }
    }
  }

  dispose(): void {
    this.dimmed.dispose();
    this.ghost.dispose();
  }
}
