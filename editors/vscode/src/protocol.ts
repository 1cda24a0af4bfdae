// The dcoder language server's own messages and commands (see lsp/server.py and lsp/actions.py).

export const PREVIEW = "dcoder/preview";
export const STATUS = "dcoder/status";

export const SERVER_COMMANDS = {
  refine: "dcoder.refineSelection",
  fillRegion: "dcoder.fillRegion",
  fillHoles: "dcoder.fillHoles",
} as const;

export const ACTION_KINDS = {
  refine: "refactor.rewrite.dcoder.refine",
  fill: "refactor.rewrite.dcoder.fill",
  fillHoles: "refactor.rewrite.dcoder.fillHoles",
} as const;

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface PreviewSpan {
  range: Range;
  text: string;
}

/** Sent at each denoising step of a refine/fill (done: false), and once when the run ends. */
export interface PreviewParams {
  uri: string;
  version: number;
  step?: number;
  done: boolean;
  cancelled?: boolean;
  spans: PreviewSpan[];
}

export interface StatusParams {
  state: "idle" | "busy" | "loading" | "error";
  busy: boolean;
  model: string | null;
  provider: string;
  message: string | null;
}

/** What a dcoder server command answers once the client has applied (or refused) its edit. */
export interface CommandResult {
  applied: boolean;
  reason?: string | null;
}

// Every command carries the document version it was computed for: the server refuses to
// work on (and the client refuses to apply) anything computed for an older text.

export function refineArguments(uri: string, version: number, range: Range, keepConfident = false) {
  return { uri, version, range, keepConfident };
}

export function fillRegionArguments(uri: string, version: number, position: Position, region?: string) {
  return region ? { uri, version, position, region } : { uri, version, position };
}

export function fillHolesArguments(uri: string, version: number) {
  return { uri, version };
}
