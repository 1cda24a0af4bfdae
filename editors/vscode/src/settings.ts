// The extension's settings ("dcoder.*") and what of them the server gets.

/** The part of vscode.WorkspaceConfiguration this module reads (section "dcoder"). */
export interface ConfigurationReader {
  get<T>(key: string): T | undefined;
}

/** Settings passed to the server as initializationOptions and didChangeConfiguration;
 * the names are lsp/config.py's. */
export const SERVER_SETTINGS = [
  "model",
  "provider",
  "steps",
  "inlineSteps",
  "threshold",
  "temperature",
  "maxTokens",
  "candidates",
  "searchTokens",
  "preview",
  "inlinePreview",
  "minConfidence",
  "length",
  "maxSpan",
  "deadline",
  "policy",
  "policyFile",
] as const;

export type ServerSettings = Record<(typeof SERVER_SETTINGS)[number], unknown>;

export function serverSettings(config: ConfigurationReader): ServerSettings {
  const out = {} as ServerSettings;
  for (const key of SERVER_SETTINGS) {
    const value = config.get<unknown>(key);
    // An empty model folder means the built-in model, which the server calls null.
    out[key] = value === undefined || value === "" ? null : value;
  }
  return out;
}

export interface ServerLaunch {
  command: string;
  args: string[];
}

/** The command that starts the server; vscode-languageclient appends --stdio. */
export function serverLaunch(config: ConfigurationReader): ServerLaunch {
  const command = (config.get<string>("server.path") ?? "").trim() || "dcoder";
  const args = config.get<string[]>("server.args") ?? ["lsp"];
  return { command, args: [...args] };
}

export function inlineEnabled(config: ConfigurationReader): boolean {
  return config.get<boolean>("inlineCompletions.enabled") ?? true;
}

/** Whether a configuration change needs the server restarted (rather than told). */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return affects("dcoder.server");
}

export function needsUpdate(affects: (section: string) => boolean): boolean {
  return SERVER_SETTINGS.some((key) => affects(`dcoder.${key}`));
}
