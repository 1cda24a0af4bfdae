"""Go syntax regions (grammars/go/regions.scm) on real code with real tree-sitter."""

import re
import textwrap
from functools import partial

import pytest
from regions_support import assert_nested, at, crlf_copy, expansions
from regions_support import named as named_in

from dcoder import syntax

LANG = "go"
named = partial(named_in, language=LANG)


def _tabs(text: str) -> str:
    """gofmt indents with tabs: turn each leading group of four spaces into one."""
    return re.sub(r"(?m)^(?: {4})+", lambda m: "\t" * (len(m.group()) // 4), text)


CODE = _tabs(textwrap.dedent('''\
    package geometry

    import "fmt"

    import (
        "math"
        str "strings"
    )

    const π = 3.14159

    // Punkt is a labelled point.
    type Punkt struct {
        X, Y float64
        Name string `json:"name"`
    }

    type Shape interface {
        Fläche() float64
        fmt.Stringer
    }

    type (
        ID   int
        Leer struct{}
    )

    var origin = Punkt{Name: "Ursprung ✓"}

    func (p *Punkt) Größe(scale float64, tags ...string) (float64, error) {
        if d := math.Hypot(p.X, p.Y); d > 0 {
            p.X *= scale
        } else {
            return 0, fmt.Errorf("leer: %s", str.Join(tags, ","))
        }
        total := 0.0
        for i := 0; i < len(tags); i++ {
            total += float64(len(tags[i]))
        }
        for total > 100 {
            total /= 2
        }
        norm := func(v float64) float64 { return v / scale }
        switch {
        case total > 10:
            total = norm(total)
        default:
        }
        return math.Sqrt(total) * π, nil
    }

    func reset() {}

    func main() {
        label := `raw \\n text`
        fmt.Println(label, origin.X)
        tick()
    }
'''))

METHOD = CODE[CODE.index("func (p *Punkt)"):CODE.index("\n\nfunc reset")]


def test_query_compiles_with_shared_names_only():
    g = syntax.grammar("go")
    assert g is not None and g.query is not None
    names = set(syntax.region_names("go"))
    assert names <= syntax.CAPTURES
    # Go has no decorators or comprehensions; doc comments are not exposed as docstrings.
    assert names == syntax.CAPTURES - {"decorator", "comprehension", "docstring"}
    assert syntax.note("go") is None
    assert syntax.parse(CODE, "go").has_error is False


@pytest.mark.parametrize("marker, name, expected, offset", [
    # functions and methods
    ("Größe", "function.outer", METHOD, 0),
    ("Größe", "statement", METHOD, 0),
    ("p.X *= scale", "function.inner", METHOD[METHOD.index("{\n") + 1:-1], 0),
    ("scale float64,", "parameters", "scale float64, tags ...string", 0),
    ("scale float64,", "parameter", "scale float64", 0),
    ("tags ...", "parameter", "tags ...string", 0),
    # func literal
    ("v / scale", "lambda", "func(v float64) float64 { return v / scale }", 0),
    ("v float64)", "parameters", "v float64", 0),
    ("v float64)", "parameter", "v float64", 0),
    ("v / scale", "block", " return v / scale ", 0),
    ("v / scale", "return.value", "v / scale", 0),
    ("norm := func", "assignment.rhs", "func(v float64) float64 { return v / scale }", 8),
    # struct / interface types
    ("X, Y float64", "class.outer", 'type Punkt struct {\n\tX, Y float64\n\tName string `json:"name"`\n}', 0),
    ("X, Y float64", "class.inner", '\n\tX, Y float64\n\tName string `json:"name"`\n', 0),
    ("fmt.Stringer", "class.outer", "type Shape interface {\n\tFläche() float64\n\tfmt.Stringer\n}", 0),
    ("fmt.Stringer", "class.inner", "Fläche() float64\n\tfmt.Stringer", 0),
    ("Leer", "class.outer", "Leer struct{}", 0),
    ("Leer", "statement", "type (\n\tID   int\n\tLeer struct{}\n)", 0),
    # conditions: if with initialiser, three-clause for, bare for, tagless switch case
    ("d > 0", "condition", "d > 0", 0),
    ("i < len", "condition", "i < len(tags)", 0),
    ("total > 100", "condition", "total > 100", 0),
    ("total > 10:", "condition", "total > 10", 0),
    # assignments: :=, compound, var / const initialisers
    ("Hypot", "assignment.rhs", "math.Hypot(p.X, p.Y)", 0),
    ("d :=", "statement", "d := math.Hypot(p.X, p.Y)", 0),
    ("*= scale", "assignment.rhs", "scale", 3),
    ("/= 2", "assignment.rhs", "2", 3),
    ("0.0", "assignment.rhs", "0.0", 0),
    ("3.14159", "assignment.rhs", "3.14159", 0),
    ("Ursprung", "assignment.rhs", 'Punkt{Name: "Ursprung ✓"}', 0),
    ("i++", "statement", "i++", 0),
    # calls
    ("Hypot", "call.outer", "math.Hypot(p.X, p.Y)", 0),
    ("p.Y)", "call.inner", "p.X, p.Y", 0),
    ('tags, ","', "call.inner", 'tags, ","', 0),
    ('tags, ","', "call.outer", 'str.Join(tags, ",")', 0),
    ("tick", "call.outer", "tick()", 0),
    ("tick", "statement", "tick()", 0),
    # multiple return values: one region over the whole list
    ("math.Sqrt", "return.value", "math.Sqrt(total) * π, nil", 0),
    ("leer:", "return.value", '0, fmt.Errorf("leer: %s", str.Join(tags, ","))', 0),
    # strings: interpreted (non-ASCII), raw, struct tag
    ("Ursprung", "string", '"Ursprung ✓"', 0),
    ("raw \\n", "string", "`raw \\n text`", 0),
    ("json", "string", '`json:"name"`', 0),
    # blocks: braced bodies and a brace-less case body
    ("total += float64", "block", "\n\t\ttotal += float64(len(tags[i]))\n\t", 0),
    ("total = norm", "block", "total = norm(total)", 0),
    # imports, single and grouped
    ('"fmt"', "import", 'import "fmt"', 0),
    ("strings", "import", 'import (\n\t"math"\n\tstr "strings"\n)', 0),
])
def test_region_vocabulary_on_go(marker, name, expected, offset):
    assert named(CODE, marker, name, offset) == expected


def test_grouped_type_declaration_is_not_a_class():
    names = [r.name for r in syntax.regions_at(CODE, at(CODE, "ID   int"), "go")]
    assert names == ["statement"]


def test_regions_are_listed_innermost_first_through_a_closure():
    pos = at(CODE, "v / scale")
    found = syntax.regions_at(CODE, pos, "go")
    assert_nested(found, pos)
    assert [r.name for r in found] == [
        "return.value", "statement", "block", "lambda", "assignment.rhs", "statement",
        "function.inner", "block", "function.outer", "statement",
    ]
    assert CODE[found[5].start:found[5].end].startswith("norm := func")
    assert [r.node_type for r in found[-4:]] == ["block", "block", "method_declaration", "method_declaration"]


@pytest.mark.parametrize("marker", ["v / scale", "p.Y)", "Ursprung", "π, nil", "json", "Fläche"])
def test_expand_is_monotone(marker):
    doc = syntax.parse(CODE, "go")
    chain = expansions(doc, CODE, marker)
    assert len(chain) >= 2
    # the last step is a whole top-level declaration
    assert chain[-1].name in {"statement", "function.outer", "class.outer"}
    assert CODE[chain[-1].end - 1] in "})\"" and CODE[chain[-1].start:].startswith(("func", "type", "var"))


def test_expand_steps_through_the_named_regions():
    doc = syntax.parse(CODE, "go")
    chain = expansions(doc, CODE, "p.Y")
    assert [r.name for r in chain][:4] == ["call.inner", "call.outer", "statement", "statement"]
    assert [CODE[r.start:r.end] for r in chain[:3]] == [
        "p.X, p.Y", "math.Hypot(p.X, p.Y)", "d := math.Hypot(p.X, p.Y)"]
    assert chain[3].node_type == "if_statement"
    assert chain[-1].name == "function.outer" and CODE[chain[-1].start:chain[-1].end] == METHOD
    assert syntax.expand(CODE, (at(CODE, "scale float64,"), at(CODE, "scale float64,") + 1), "go").name == "parameter"


def test_empty_brackets_and_braces_give_zero_width_insides():
    empty_params = at(CODE, "reset()") + len("reset(")
    empty_body = at(CODE, "{}\n\nfunc main") + 1
    empty_call = at(CODE, "tick()") + len("tick(")
    empty_struct = at(CODE, "struct{}") + len("struct{")
    empty_elem_params = at(CODE, "Fläche()") + len("Fläche(")
    for pos, name in [(empty_params, "parameters"), (empty_body, "function.inner"), (empty_body, "block"),
                      (empty_call, "call.inner"), (empty_struct, "class.inner"),
                      (empty_elem_params, "parameters")]:
        r = syntax.region(CODE, pos, name, "go")
        assert r is not None, name
        assert (r.start, r.end) == (pos, pos), name
    # main() too: its empty parameter list sits right after the name
    pos = at(CODE, "main()") + len("main(")
    assert (syntax.region(CODE, pos, "parameters", "go").start, syntax.region(CODE, pos, "parameters", "go").end) == (pos, pos)


def test_crlf_gives_the_same_regions_shifted():
    crlf = crlf_copy(CODE, "go", more_than=80)
    assert named(crlf, "X, Y float64", "class.inner") == '\r\n\tX, Y float64\r\n\tName string `json:"name"`\r\n'
    assert named(crlf, "math.Sqrt", "return.value") == "math.Sqrt(total) * π, nil"
    assert named(crlf, "strings", "import") == 'import (\r\n\t"math"\r\n\tstr "strings"\r\n)'


BROKEN = _tabs(textwrap.dedent('''\
    package main

    func broken(a int {
        if a > {
            return a +
        }
    }
'''))


def test_broken_code_reports_errors_and_problems():
    doc = syntax.parse(BROKEN, "go")
    assert doc.has_error is True
    problems = doc.problems()
    assert problems
    assert all(0 <= p.context[0] <= p.start <= p.end <= p.context[1] <= len(BROKEN) for p in problems)
    kinds = {p.kind for p in problems}
    assert "MISSING )" in kinds  # the unclosed parameter list
    assert any(p.kind == "ERROR" and BROKEN[p.start:p.end] == "+" for p in problems)
    # the valid code around the errors still has regions
    assert named(BROKEN, "a int", "parameter") == "a int"


def test_missing_closing_brace_is_a_problem():
    text = "package main\n\nfunc f() {\n\tx := 1\n"
    doc = syntax.parse(text, "go")
    assert doc.has_error
    assert [p.kind for p in doc.problems()] == ["MISSING }"]
    assert named(text, "1", "assignment.rhs") == "1"
