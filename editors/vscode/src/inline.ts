// Inline completions go through vscode-languageclient; this middleware adds the on/off toggle and
// drops results computed for a text the user has since changed.
import type * as vscode from "vscode";

type Next = (
  document: vscode.TextDocument,
  position: vscode.Position,
  context: vscode.InlineCompletionContext,
  token: vscode.CancellationToken,
) => vscode.ProviderResult<vscode.InlineCompletionItem[] | vscode.InlineCompletionList>;

export function inlineMiddleware(enabled: () => boolean) {
  return async (
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
    next: Next,
  ): Promise<vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined> => {
    if (!enabled()) {
      return null;
    }
    const version = document.version;
    const result = await next(document, position, context, token);
    return token.isCancellationRequested || document.version !== version ? null : result;
  };
}
