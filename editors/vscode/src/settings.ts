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
  "scopeBias",
  "workspaceContext",
  "workspaceExclude",
] as const;

/** Server settings declared under another name, since "dcoder.server.*" already says how the
 * extension starts the language server: server setting -> extension setting. */
export const RENAMED_SETTINGS = {
  server: "remote.url",
  serverToken: "remote.token",
} as const;

export type ServerSettings = Record<(typeof SERVER_SETTINGS)[number] | keyof typeof RENAMED_SETTINGS, unknown>;

export function serverSettings(config: ConfigurationReader): ServerSettings {
  const out = {} as ServerSettings;
  for (const key of SERVER_SETTINGS) {
    const value = config.get<unknown>(key);
    // An empty model folder means the built-in model, which the server calls null.
    out[key] = value === undefined || value === "" ? null : value;
  }
  for (const [key, name] of Object.entries(RENAMED_SETTINGS) as [keyof typeof RENAMED_SETTINGS, string][]) {
    // An empty URL or token means none (local model, $DCODER_TOKEN): null for the server too.
    out[key] = config.get<string | null>(name)?.trim() || null;
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
  return [...SERVER_SETTINGS, ...Object.values(RENAMED_SETTINGS)].some((key) => affects(`dcoder.${key}`));
}
