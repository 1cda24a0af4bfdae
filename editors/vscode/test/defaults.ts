import { readFileSync } from "node:fs";
import type { ConfigurationReader } from "../src/settings";

const contributed: Record<string, { default: unknown }> =
  JSON.parse(readFileSync("package.json", "utf8")).contributes.configuration.properties;

/** The "dcoder" settings as package.json declares their defaults, with overrides. */
export function defaults(over: Record<string, unknown> = {}): ConfigurationReader {
  return {
    get<T>(key: string): T | undefined {
      return (key in over ? over[key] : contributed[`dcoder.${key}`]?.default) as T | undefined;
    },
  };
}
