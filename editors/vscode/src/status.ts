// The status-bar item's text and tooltip, from the server's dcoder/status notification.
import type { StatusParams } from "./protocol";

const ICONS: Record<StatusParams["state"] | "starting" | "stopped", string> = {
  starting: "$(loading~spin)",
  loading: "$(loading~spin)",
  busy: "$(sync~spin)",
  idle: "$(sparkle)",
  error: "$(error)",
  stopped: "$(debug-disconnect)",
};

export interface StatusView {
  text: string;
  tooltip: string;
}

export function statusView(status: StatusParams | "starting" | "stopped", inline: boolean): StatusView {
  const state = typeof status === "string" ? status : status.state;
  const text = `${ICONS[state]} dcoder${inline ? "" : " (inline off)"}`;
  if (typeof status === "string") {
    return { text, tooltip: status === "starting" ? "dcoder: starting the server" : "dcoder: the server is not running" };
  }
  const lines = [
    `dcoder: ${state}`,
    `model: ${status.model ?? "built-in"}`,
    `provider: ${status.provider}`,
    `inline completions: ${inline ? "on" : "off"}`,
  ];
  if (status.message) {
    lines.push(status.message);
  }
  return { text, tooltip: lines.join("\n") };
}
