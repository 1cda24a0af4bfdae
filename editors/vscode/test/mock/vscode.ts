// A small stand-in for the `vscode` module (no VS Code can run here): the classes and functions
// the extension's modules use, recording what they are asked to show.

export class Position {
  constructor(readonly line: number, readonly character: number) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: number | Position, b: number | Position, c?: number, d?: number) {
    this.start = typeof a === "number" ? new Position(a, b as number) : a;
    this.end = typeof a === "number" ? new Position(c as number, d as number) : (b as Position);
  }
  get isEmpty(): boolean {
    return this.start.line === this.end.line && this.start.character === this.end.character;
  }
}

export class Selection extends Range {
  constructor(readonly anchor: Position, readonly active: Position) {
    const forward = anchor.line < active.line || (anchor.line === active.line && anchor.character <= active.character);
    super(forward ? anchor : active, forward ? active : anchor);
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export enum ConfigurationTarget {
  Global = 1,
  Workspace = 2,
  WorkspaceFolder = 3,
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export class Uri {
  constructor(private readonly value: string) {}
  static parse(value: string): Uri {
    return new Uri(value);
  }
  toString(): string {
    return this.value;
  }
}

/** A document over a string; `edit` bumps the version like typing would. */
export class MockDocument {
  readonly uri: Uri;
  version = 1;
  constructor(uri: string, public text: string) {
    this.uri = Uri.parse(uri);
  }
  lineAt(line: number) {
    const content = this.text.split("\n")[line];
    return { text: content, range: new Range(line, 0, line, content.length) };
  }
  edit(text: string): void {
    this.text = text;
    this.version += 1;
  }
}

export interface DecorationType {
  key: string;
  options: unknown;
  disposed: boolean;
  dispose(): void;
}

export class MockEditor {
  readonly decorations = new Map<string, unknown[]>(); // decoration type key -> last ranges/options
  selection: Selection;
  constructor(readonly document: MockDocument, selection?: Selection) {
    this.selection = selection ?? new Selection(new Position(0, 0), new Position(0, 0));
  }
  setDecorations(type: DecorationType, ranges: unknown[]): void {
    this.decorations.set(type.key, ranges);
  }
}

export const messages: { level: "info" | "warning" | "error"; text: string }[] = [];
const decorationTypes: DecorationType[] = [];

export const window = {
  activeTextEditor: undefined as MockEditor | undefined,
  visibleTextEditors: [] as MockEditor[],
  decorationTypes,
  createTextEditorDecorationType(options: unknown): DecorationType {
    const type = { key: `decoration-${decorationTypes.length}`, options, disposed: false, dispose() { this.disposed = true; } };
    decorationTypes.push(type);
    return type;
  },
  async showInformationMessage(text: string) {
    messages.push({ level: "info", text });
    return undefined;
  },
  async showWarningMessage(text: string) {
    messages.push({ level: "warning", text });
    return undefined;
  },
  async showErrorMessage(text: string) {
    messages.push({ level: "error", text });
    return undefined;
  },
};

/** Settings by full key ("dcoder.steps"); `update` writes them back. */
export const settings = new Map<string, unknown>();

export const workspace = {
  getConfiguration(section: string) {
    return {
      get<T>(key: string): T | undefined {
        return settings.get(`${section}.${key}`) as T | undefined;
      },
      async update(key: string, value: unknown, _target?: ConfigurationTarget) {
        settings.set(`${section}.${key}`, value);
      },
    };
  },
};
