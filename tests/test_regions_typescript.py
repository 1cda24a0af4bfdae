"""TypeScript (and tsx) syntax regions from grammars/typescript/regions.scm, on real code with
real tree-sitter (tree-sitter-language-pack)."""

from functools import partial

import pytest
from regions_support import assert_nested, at, crlf_copy, expansions
from regions_support import named as named_in

from dcoder import syntax

named = partial(named_in, language="typescript")

CODE = '''\
import { Injectable, Input } from "@angular/core";
import type { Größe } from "./größe";

/** Shapes that know their area. */
export interface Shape {
  readonly name: string;
  area(scale?: number): number;
}

@Injectable({ providedIn: "root" })
export class Circle implements Shape {
  @Input() name = "kreis";
  private cache: Map<string, number> = new Map();

  constructor(private readonly radius: number, größe?: Größe) {}

  @Memo()
  @Log("área")
  area(scale: number = 1): number {
    if (this.radius <= 0 && scale > 0) {
      throw new RangeError(`radius ${this.radius} ≤ 0`);
    }
    let total = Math.PI * this.radius ** 2;
    total *= scale;
    return total;
  }

  reset(): void {
    this.cache.clear();
  }
}

export const describe = (shapes: Shape[], prefix = "→ "): string[] =>
  shapes.map((s) => prefix + s.name);

export function summarize(shapes: Shape[]): string {
  let sum = 0;
  for (const s of shapes) {
    sum += s.area();
  }
  while (sum > 1e6) {
    sum /= 10;
  }
  const label = sum > 100 ? "big 🙂" : 'small';
  const onDone = async () => {
    await flush();
  };
  return `${label}: ${sum.toFixed(2)}`;
}
'''

TSX = '''\
import React from "react";
interface Props { label: string; onClick(): void }
export const Button = ({ label, onClick }: Props) => {
  const [n, setN] = useState<number>(0);
  return <button className="btn" onClick={() => setN(n + 1)}>{label} {n > 0 ? "ü" : null}</button>;
};
'''


def test_query_compiles_for_typescript_and_tsx_with_shared_names_only():
    for language in ("typescript", "tsx"):
        g = syntax.grammar(language)
        assert g is not None and g.query is not None, language
        names = set(syntax.region_names(language))
        assert names <= syntax.CAPTURES, names - syntax.CAPTURES
        assert {"function.outer", "class.inner", "lambda", "decorator", "call.inner"} <= names
        assert syntax.note(language) is None
    # TypeScript has no comprehensions, and JSDoc is a plain comment node: neither is offered.
    assert not {"comprehension", "docstring"} & set(syntax.region_names("typescript"))


# (marker, name, expected text[, offset of the position past the marker's start])
REGIONS = [
    ("Injectable, Input", "import", 'import { Injectable, Input } from "@angular/core";'),
    ("./größe", "import", 'import type { Größe } from "./größe";'),
    ("./größe", "string", '"./größe"'),
    ("readonly name", "class.outer", CODE[CODE.index("interface Shape") : CODE.index("}\n\n@Inj") + 1]),
    ("readonly name", "class.inner", "\n  readonly name: string;\n  area(scale?: number): number;\n"),
    ("scale?", "function.outer", "area(scale?: number): number"),
    ("scale?", "parameter", "scale?: number"),
    ("providedIn", "decorator", '@Injectable({ providedIn: "root" })'),
    ("providedIn", "call.inner", '{ providedIn: "root" }'),
    ("Input()", "decorator", "@Input()"),
    ('"kreis"', "assignment.rhs", '"kreis"'),
    ('"kreis"', "statement", '@Input() name = "kreis"'),
    ("new Map", "assignment.rhs", "new Map()"),
    ("new Map", "call.outer", "new Map()"),
    ("größe?", "parameter", "größe?: Größe"),
    ("größe?", "parameters", "private readonly radius: number, größe?: Größe"),
    ("radius: number", "parameter", "private readonly radius: number"),
    ('"área"', "string", '"área"'),
    ('"área"', "call.inner", '"área"'),
    ('@Log("área")', "decorator", '@Log("área")'),
    ("scale: number = 1", "parameter", "scale: number = 1"),
    ("scale: number = 1", "function.outer",
     CODE[CODE.index("area(scale: number") : CODE.index("return total;\n  }") + len("return total;\n  }")]),
    ("&& scale", "condition", "this.radius <= 0 && scale > 0"),
    ("throw", "block", "\n      throw new RangeError(`radius ${this.radius} ≤ 0`);\n    "),
    ("throw", "statement", "throw new RangeError(`radius ${this.radius} ≤ 0`);"),
    ("≤", "string", "`radius ${this.radius} ≤ 0`"),
    ("RangeError", "call.outer", "new RangeError(`radius ${this.radius} ≤ 0`)"),
    ("Math.PI", "assignment.rhs", "Math.PI * this.radius ** 2"),
    ("*= scale", "assignment.rhs", "scale", 3),
    ("return total", "return.value", "total", 7),
    ("this.cache.clear", "function.inner", "\n    this.cache.clear();\n  "),
    ("this.cache.clear", "function.outer", "reset(): void {\n    this.cache.clear();\n  }"),
    ("prefix = ", "lambda",
     '(shapes: Shape[], prefix = "→ "): string[] =>\n  shapes.map((s) => prefix + s.name)'),
    ("prefix = ", "parameters", 'shapes: Shape[], prefix = "→ "'),
    ("prefix = ", "parameter", 'prefix = "→ "'),
    ("→", "string", '"→ "'),
    ("prefix + s", "lambda", "(s) => prefix + s.name"),
    ("prefix + s", "call.inner", "(s) => prefix + s.name"),
    ("(s) =>", "parameter", "s", 1),
    ("shapes.map", "call.outer", "shapes.map((s) => prefix + s.name)"),
    ("let sum", "function.outer",
     CODE[CODE.index("function summarize") : len(CODE) - 1]),
    ("s of shapes", "statement", "for (const s of shapes) {\n    sum += s.area();\n  }"),
    ("s.area()", "assignment.rhs", "s.area()"),
    ("1e6", "condition", "sum > 1e6"),
    ("sum /= 10", "block", "\n    sum /= 10;\n  "),
    ("sum > 100", "condition", "sum > 100"),
    ("sum > 100", "assignment.rhs", "sum > 100 ? \"big 🙂\" : 'small'"),
    ("🙂", "string", '"big 🙂"'),
    ("'small'", "string", "'small'"),
    ("flush", "function.inner", "\n    await flush();\n  "),
    ("flush", "lambda", "async () => {\n    await flush();\n  }"),
    ("flush", "function.outer", "async () => {\n    await flush();\n  }"),
    ("flush", "statement", "await flush();"),
    ("toFixed", "return.value", "`${label}: ${sum.toFixed(2)}`"),
    ("toFixed", "call.inner", "2", 8),
]


@pytest.mark.parametrize("case", REGIONS, ids=lambda c: f"{c[1]}@{c[0]}")
def test_region_vocabulary_on_real_code(case):
    marker, name, expected, *offset = case
    assert syntax.parse(CODE, "typescript").has_error is False
    assert named(CODE, marker, name, *offset) == expected


def test_decorated_class_and_method_give_a_region_without_and_one_with_their_decorators():
    pos = at(CODE, "** 2")
    found = syntax.regions_at(CODE, pos, "typescript")
    assert_nested(found, pos)
    first_line = [CODE[r.start:r.end].split("\n")[0] for r in found]
    names = [r.name for r in found]
    assert names[:2] == ["assignment.rhs", "statement"]
    assert [line for line, n in zip(first_line, names) if n == "function.outer"] == [
        "area(scale: number = 1): number {", "@Memo()"]
    assert [line for line, n in zip(first_line, names) if n == "class.outer"] == [
        "class Circle implements Shape {", '@Injectable({ providedIn: "root" })']
    assert names.index("function.inner") < names.index("function.outer") < names.index("class.inner")


def test_decorators_on_a_class_that_is_not_exported():
    text = "@A @B() class X {\n  @m1 @m2() run() {}\n  stop() {}\n}\n"
    outers = [text[r.start:r.end] for r in syntax.regions_at(text, at(text, "run"), "typescript")
              if r.name.endswith(".outer")]
    assert outers == ["run() {}", "@m1 @m2() run() {}", "class X {\n  @m1 @m2() run() {}\n  stop() {}\n}", text[:-1]]
    # an undecorated method has no second region
    assert [text[r.start:r.end] for r in syntax.regions_at(text, at(text, "stop"), "typescript")
            if r.name == "function.outer"] == ["stop() {}"]


@pytest.mark.parametrize("marker, names", [
    ("radius <= 0", ["condition", "statement", "function.inner", "function.outer"]),
    # the callback is the whole argument list: expanding skips call.inner, its same range
    ("prefix + s", ["lambda", "call.outer", "lambda", "statement", "statement"]),
    ("flush", ["call.outer", "statement", "function.inner", "lambda", "statement", "function.inner",
               "function.outer", "statement"]),
])
def test_expand_is_monotone_up_to_the_top_level_statement(marker, names):
    doc = syntax.parse(CODE, "typescript")
    pos = at(CODE, marker)
    chain = expansions(doc, CODE, marker)
    assert [r.name for r in chain][:len(names)] == names
    # the last step is the top-level statement that holds the start
    top = next(n for n in doc.tree.root_node.children if n.start_byte <= len(CODE[:pos].encode()) < n.end_byte)
    assert (chain[-1].start, chain[-1].end) == doc.span(top)
    assert syntax.expand(CODE, (at(CODE, "größe?"), at(CODE, "größe?") + 1), "typescript").name == "parameter"


@pytest.mark.parametrize("marker, offset, name", [
    ("reset()", 6, "parameters"),
    ("s.area()", 7, "call.inner"),
    ("flush()", 6, "call.inner"),
    ("new Map()", 8, "call.inner"),
    ("Input()", 6, "call.inner"),
    ("async ()", 7, "parameters"),
    ("Größe) {}", 8, "function.inner"),
    ("Größe) {}", 8, "block"),
])
def test_empty_brackets_give_zero_width_insides(marker, offset, name):
    pos = at(CODE, marker, offset)
    assert CODE[pos - 1] in "({" and CODE[pos] in ")}"
    r = syntax.region(CODE, pos, name, "typescript")
    assert r is not None and (r.start, r.end) == (pos, pos)


def test_crlf_gives_the_same_regions_shifted_by_the_carriage_returns():
    crlf = crlf_copy(CODE, "typescript")
    assert named(crlf, "this.cache.clear", "function.inner") == "\r\n    this.cache.clear();\r\n  "
    assert named(crlf, "🙂", "string") == '"big 🙂"'
    assert named(crlf, "größe?", "parameter") == "größe?: Größe"


def test_tsx_shares_the_query_and_adds_jsx():
    assert syntax.parse(CODE, "tsx").regions() == syntax.parse(CODE, "typescript").regions()
    doc = syntax.parse(TSX, "tsx")
    assert not doc.has_error
    assert named(TSX, '"btn"', "string", language="tsx") == '"btn"'
    assert named(TSX, "setN(n + 1)", "lambda", language="tsx") == "() => setN(n + 1)"
    assert named(TSX, "n + 1", "call.inner", language="tsx") == "n + 1"
    assert named(TSX, "n > 0", "condition", language="tsx") == "n > 0"
    assert named(TSX, '"ü"', "string", language="tsx") == '"ü"'
    assert named(TSX, "<button", "return.value", language="tsx").startswith('<button className="btn"')
    assert named(TSX, "onClick():", "function.outer", language="tsx") == "onClick(): void"
    assert named(TSX, "label: string", "class.inner", language="tsx") == " label: string; onClick(): void "
    assert named(TSX, "label, onClick }", "parameters", language="tsx") == "{ label, onClick }: Props"
    assert named(TSX, "useState", "function.inner", language="tsx").startswith("\n  const [n, setN]")
    # the same JSX is an error for the plain typescript grammar
    assert syntax.parse(TSX, "typescript").has_error


def test_broken_code_reports_errors_and_still_has_regions():
    text = "function f(a: number {\n  return a +;\n}\nclass C { m() { g(; } }\n"
    doc = syntax.parse(text, "typescript")
    assert doc.has_error
    problems = doc.problems()
    assert problems and all(p.kind == "ERROR" or p.kind.startswith("MISSING") for p in problems)
    assert all(0 <= p.start <= p.end <= len(text) for p in problems)
    assert any(p.start >= text.index("class C") for p in problems)  # the second error is found too
    assert all(0 <= r.start <= r.end <= len(text) for r in doc.regions())
    assert syntax.parse(CODE, "typescript").problems() == []
