"""JavaScript syntax regions (grammars/javascript/regions.scm) on real code with real tree-sitter:
the named regions, innermost-first order, monotone expansion, zero-width insides of empty
brackets, CRLF offsets and parse errors."""

import textwrap
from functools import partial

import pytest
from regions_support import assert_nested, at, between, crlf_copy, expansions
from regions_support import named as named_in

from dcoder import syntax

LANG = "javascript"
named = partial(named_in, language=LANG)

CODE = textwrap.dedent('''\
    import { readFile } from "node:fs/promises";
    import * as path from 'path';

    export const größe = 42;

    export async function loadConfig(file, { strict = false } = {}, ...rest) {
      const text = await readFile(path.join(base(), file), "utf8");
      let { name, tags: [first, ...others] } = JSON.parse(text);
      if (strict && !name) {
        throw new Error(`missing name in ${file}`);
      }
      for (let i = 0; i < others.length; i++) {
        total += others[i].weight;
      }
      while (queue.length > 0) {
        queue.pop();
      }
      return name ? { name, first } : null;
    }

    const parse = function parseLine(line) {
      return line.split(",").map((c) => c.trim());
    };
    const greet = (who) => `héllo, ${who} 👋`;
    const noop = () => {};
    const twice = n => n * 2;

    @sealed
    class Cache extends Map {
      static #instances = 0;
      hits = größe;

      constructor() {
        super();
      }

      @memoize
      get(key) {
        this.hits += 1;
        return super.get(key) ?? fallback(key);
      }
    }

    export { Cache as default };
    export { helper } from "./helper.js";
''')


def test_query_compiles_with_shared_names_only():
    g = syntax.grammar(LANG)
    assert g is not None and g.query is not None
    names = syntax.region_names(LANG)
    assert set(names) <= syntax.CAPTURES
    # JavaScript has no comprehension; a JSDoc comment is not part of its declaration.
    assert "comprehension" not in names and "docstring" not in names
    assert syntax.note(LANG) is None
    assert syntax.language_of("app.mjs") == LANG


# marker: a unique text where the region is, or (text, offset into it).
@pytest.mark.parametrize("marker, name, expected", [
    # imports and exports
    ("readFile }", "import", 'import { readFile } from "node:fs/promises";'),
    ("* as path", "import", "import * as path from 'path';"),
    ("'path'", "string", "'path'"),
    ("helper }", "import", 'export { helper } from "./helper.js";'),
    ("Cache as", "statement", "export { Cache as default };"),
    ("größe = 42", "statement", "const größe = 42;"),
    (("größe = 42", len("größe = ")), "assignment.rhs", "42"),
    # a function declaration, its parameters and destructuring
    ("loadConfig", "function.outer", between(CODE, "async function loadConfig", "null;\n}")),
    ("{ strict", "parameters", "file, { strict = false } = {}, ...rest"),
    ("{ strict", "parameter", "{ strict = false } = {}"),
    ("...rest", "parameter", "...rest"),
    ("const text", "function.inner", between(CODE, "\n  const text", "null;\n")),
    (("others] }", len("others] } = ")), "assignment.rhs", "JSON.parse(text)"),
    ("JSON.parse", "call.outer", "JSON.parse(text)"),
    (("(text);", 1), "call.inner", "text"),
    (("path.join", len("path.join(")), "call.inner", 'base(), file'),
    ('"utf8"', "call.inner", 'path.join(base(), file), "utf8"'),
    ('"utf8"', "assignment.rhs", 'await readFile(path.join(base(), file), "utf8")'),
    # conditions, blocks and returns
    ("strict &&", "condition", "strict && !name"),
    ("throw", "block", "\n    throw new Error(`missing name in ${file}`);\n  "),
    ("throw", "statement", "throw new Error(`missing name in ${file}`);"),
    ("missing name", "string", "`missing name in ${file}`"),
    ("new Error", "call.outer", "new Error(`missing name in ${file}`)"),
    ("i < others", "condition", "i < others.length"),
    ("others[i]", "assignment.rhs", "others[i].weight"),
    ("total +=", "statement", "total += others[i].weight;"),
    ("queue.length", "condition", "queue.length > 0"),
    ("queue.pop", "block", "\n    queue.pop();\n  "),
    ("name ?", "return.value", "name ? { name, first } : null"),
    ("name ?", "condition", "name"),
    ("name ?", "statement", "return name ? { name, first } : null;"),
    # function expressions and arrow functions
    ("parseLine", "lambda", between(CODE, "function parseLine", "trim());\n}")),
    ("parseLine", "function.outer", between(CODE, "function parseLine", "trim());\n}")),
    ("(c) =>", "lambda", "(c) => c.trim()"),
    (("(c) =>", 1), "parameters", "c"),
    ("c.trim", "call.outer", "c.trim()"),
    ("(who)", "lambda", "(who) => `héllo, ${who} 👋`"),
    ("héllo", "string", "`héllo, ${who} 👋`"),
    ("héllo", "assignment.rhs", "(who) => `héllo, ${who} 👋`"),
    ("n => n", "parameters", "n"),
    ("n => n", "lambda", "n => n * 2"),
    # a decorated class, its fields and methods
    ("Cache extends", "class.outer", between(CODE, "class Cache", "fallback(key);\n  }\n}")),
    ("sealed", "decorator", "@sealed"),
    ("memoize", "decorator", "@memoize"),
    ("#instances", "class.inner", between(CODE, "\n  static #instances", "fallback(key);\n  }\n")),
    ("#instances", "statement", "static #instances = 0"),
    (("hits = größe", len("hits = ")), "assignment.rhs", "größe"),
    ("get(key) {", "function.outer", between(CODE, "@memoize", "fallback(key);\n  }")),
    (("get(key) {", len("get(")), "parameter", "key"),
    (("this.hits", len("this.hits += ")), "assignment.rhs", "1"),
    ("super.get", "return.value", "super.get(key) ?? fallback(key)"),
])
def test_region_vocabulary_on_real_code(marker, name, expected):
    marker, offset = marker if isinstance(marker, tuple) else (marker, 0)
    assert syntax.parse(CODE, LANG).has_error is False
    assert named(CODE, marker, name, offset) == expected


def test_regions_are_listed_innermost_first():
    pos = at(CODE, "others[i]")
    found = syntax.regions_at(CODE, pos, LANG)
    assert_nested(found, pos)
    names = [r.name for r in found]
    assert names[:4] == ["assignment.rhs", "statement", "block", "statement"]
    # the body is both function.inner and block: the more specific name first
    assert names[4:8] == ["function.inner", "block", "function.outer", "statement"]
    assert CODE[found[-1].start:found[-1].end].startswith("export async function loadConfig")
    # a decorated class: without its decorators, then with them
    outers = [CODE[r.start:r.end].split(" extends")[0]
              for r in syntax.regions_at(CODE, at(CODE, "Map {"), LANG) if r.name == "class.outer"]
    assert outers == ["class Cache", "@sealed\nclass Cache"]


@pytest.mark.parametrize("marker, first_names, outermost", [
    ("weight", ["assignment.rhs", "statement", "block", "statement", "function.inner"],
     "export async function loadConfig"),
    # the arrow is all of map()'s arguments and the call all the return value: same ranges, skipped
    ("trim()", ["call.outer", "lambda", "call.outer", "statement", "function.inner"], "const parse"),
    ("fallback", ["call.outer", "return.value", "statement", "function.inner", "function.outer"],
     "@sealed"),
    ("👋", ["string", "lambda", "statement"], "const greet"),
])
def test_expand_is_monotone(marker, first_names, outermost):
    doc = syntax.parse(CODE, LANG)
    chain = expansions(doc, CODE, marker)
    assert [r.name for r in chain][:len(first_names)] == first_names
    assert CODE[chain[-1].start:chain[-1].end].startswith(outermost)


def test_empty_brackets_give_zero_width_insides():
    doc = syntax.parse(CODE, LANG)
    cases = [
        ("constructor()", len("constructor("), "parameters"),
        ("super();", len("super("), "call.inner"),
        ("base()", len("base("), "call.inner"),
        ("() => {}", 1, "parameters"),
        ("() => {}", len("() => {"), "function.inner"),
        ("() => {}", len("() => {"), "block"),
    ]
    for marker, offset, name in cases:
        pos = at(CODE, marker, offset)
        r = doc.region(pos, name)
        assert r is not None and (r.start, r.end) == (pos, pos), (marker, name, r)
    # an empty class body and an empty `if` block too
    text = "class E {}\nif (ok) {}\nf();\n"
    for marker, name in [("{}\nif", "class.inner"), ("{}\nf", "block")]:
        pos = at(text, marker, 1)
        r = syntax.region(text, pos, name, LANG)
        assert (r.start, r.end) == (pos, pos), (marker, name)
    assert named(text, "ok", "condition") == "ok"


def test_crlf_gives_the_same_regions_shifted():
    assert not syntax.parse(CODE, LANG).has_error
    crlf = crlf_copy(CODE, LANG, more_than=100)
    assert named(crlf, "const text", "function.inner").startswith("\r\n  const text")
    assert named(crlf, "héllo", "string") == "`héllo, ${who} 👋`"
    assert named(crlf, "queue.pop", "block") == "\r\n    queue.pop();\r\n  "


def test_broken_code_reports_problems():
    text = "function ok() {\n  return 1;\n}\nif (a > ) {\n  go();\n}\n"
    doc = syntax.parse(text, LANG)
    assert doc.has_error
    (p,) = doc.problems()
    # the operand tree-sitter had to invent, in the condition that lacks it
    assert p.kind == "MISSING identifier" and p.start == p.end == at(text, "> )", 1)
    assert text[p.context[0]:p.context[1]] == "a >"
    # regions are still found around the damage
    assert named(text, "return 1", "function.inner") == "\n  return 1;\n"
    assert named(text, "go()", "block") == "\n  go();\n"
    swallowed = syntax.parse("function broken(a, {\n  return a +;\n}\n", LANG)
    assert swallowed.has_error and [p.kind for p in swallowed.problems()] == ["ERROR"]
    unclosed = syntax.parse("const s = `never closed;\n", LANG)
    assert unclosed.has_error and unclosed.problems()
