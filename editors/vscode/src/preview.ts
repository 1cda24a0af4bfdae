// Where the live denoising preview goes: each span's partially resolved text laid out next to
// the lines it will replace (decorations cannot hide text, so the old text is only dimmed).
import type { PreviewParams, PreviewSpan, Range } from "./protocol";

/** Text shown after the end of one document line. */
export interface Ghost {
  line: number;
  text: string;
}

export interface Frame {
  dimmed: Range[];
  ghosts: Ghost[];
}

export const MAX_GHOST = 200; // characters shown on one line

function clip(text: string): string {
  return text.length <= MAX_GHOST ? text : text.slice(0, MAX_GHOST - 1) + "…";
}

/** Line i of the preview goes after line start+i of the span; preview lines beyond the span's
 * last line are joined onto that line. */
export function layoutSpan(span: PreviewSpan): Ghost[] {
  const lines = span.text.replace(/\r\n?/g, "\n").split("\n");
  const { start, end } = span.range;
  const rows = end.line - start.line + 1;
  const ghosts: Ghost[] = [];
  for (let i = 0; i < Math.min(rows - 1, lines.length); i++) {
    ghosts.push({ line: start.line + i, text: clip(lines[i]) });
  }
  if (lines.length >= rows) {
    ghosts.push({ line: end.line, text: clip(lines.slice(rows - 1).join(" ⏎ ")) });
  }
  return ghosts;
}

/** The frame to draw for a notification, or null to clear: the run ended, or the preview was
 * computed for another version than the one the editor shows. */
export function frameFor(params: PreviewParams, documentVersion: number | undefined): Frame | null {
  if (params.done || documentVersion !== params.version) {
    return null;
  }
  return {
    dimmed: params.spans.map((s) => s.range),
    ghosts: params.spans.flatMap(layoutSpan),
  };
}
