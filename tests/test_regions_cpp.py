"""C++ syntax regions (grammars/cpp/regions.scm) on real code with real tree-sitter: the named
regions, innermost-first order, monotone expansion, zero-width insides of empty brackets, CRLF
offsets and parse errors."""

import textwrap
from functools import partial

import pytest
from regions_support import assert_nested, at, between, crlf_copy, expansions
from regions_support import named as named_in

from dcoder import syntax

LANG = "cpp"
named = partial(named_in, language=LANG)

CODE = textwrap.dedent('''\
    #include <string>
    #include "geometry/shape.h"
    using std::string;

    namespace geo {

    /// A labelled point.
    template <typename T>
    struct Punkt {
        T x, y;
        string name = "Ursprung ✓";
    };

    class Shape : public Base {
    public:
        explicit Shape(double scale) : scale_(scale), tags_{"rund"} {}
        virtual ~Shape();
        [[nodiscard]] double größe(double factor, int count = 1);
        void reset() {}
    private:
        double scale_;
        std::vector<string> tags_;
    };

    [[nodiscard]] double Shape::größe(double factor, int count) {
        if (factor > 0.0 && count != 0) {
            scale_ *= factor;
        } else {
            return 0.0;
        }
        double total = 0.0;
        for (const auto& tag : tags_) {
            total += static_cast<double>(tag.size());
        }
        while (total > 100) {
            total /= 2;
        }
        auto norm = [&](double v) { return v / scale_; };
        switch (count) {
        case 1:
            total = norm(total);
            break;
        default:
            break;
        }
        return count > 1 ? total * scale_ : norm(total);
    }

    }  // namespace geo

    int main() {
        const char* raw = R"(raw \\n "text")";
        std::string grüße{"Grüße, 世界"};
        geo::Shape shape(2.5);
        tick();
        return shape.größe(1.0) > 0 ? 0 : 1;
    }
''')

METHOD = between(CODE, "[[nodiscard]] double Shape::", "norm(total);\n}")
SHAPE = between(CODE, "class Shape", "tags_;\n}")


def test_query_compiles_with_the_shared_vocabulary_only():
    g = syntax.grammar(LANG)
    assert g is not None and g.query is not None
    names = set(syntax.region_names(LANG))
    assert names <= syntax.CAPTURES
    # C++ has no comprehensions; Doxygen comments are separate nodes, not docstrings.
    assert names == syntax.CAPTURES - {"comprehension", "docstring"}
    assert syntax.note(LANG) is None
    assert syntax.parse(CODE, LANG).has_error is False


@pytest.mark.parametrize("marker, name, expected", [
    # functions: an out-of-line method, with and without its attribute
    ("Shape::größe", "function.outer", METHOD[len("[[nodiscard]] "):]),
    ("Shape::größe", "statement", METHOD),
    ("double total", "function.inner", METHOD[METHOD.index("{\n") + 1:-1]),
    ("factor, int count)", "parameters", "double factor, int count"),
    ("factor, int count)", "parameter", "double factor"),
    ("int count = 1", "parameter", "int count = 1"),
    ("int count = 1", "parameters", "double factor, int count = 1"),
    # member declarations are bodiless functions and the class body's statements
    ("~Shape", "function.outer", "virtual ~Shape();"),
    ("double größe", "function.outer", "[[nodiscard]] double größe(double factor, int count = 1);"),
    ("double scale_;", "statement", "double scale_;"),
    # constructor: its member initialisers are initialisers
    ("explicit", "function.outer", 'explicit Shape(double scale) : scale_(scale), tags_{"rund"} {}'),
    ("scale), tags_", "assignment.rhs", "scale"),
    ('{"rund"}', "assignment.rhs", '{"rund"}'),
    # classes: a struct template and a class with a base clause
    ("T x, y", "class.outer", between(CODE, "struct Punkt", "✓\";\n}")),
    ("T x, y", "class.inner", '\n    T x, y;\n    string name = "Ursprung ✓";\n'),
    ("T x, y", "statement", "T x, y;"),
    ("public:", "class.outer", SHAPE),
    ("public:", "class.inner", SHAPE[SHAPE.index("{") + 1:-1]),
    ("[[nodiscard]] double größe", "decorator", "[[nodiscard]]"),
    # lambda
    ("v / scale_", "lambda", "[&](double v) { return v / scale_; }"),
    ("double v", "parameters", "double v"),
    ("double v", "parameter", "double v"),
    ("v / scale_", "block", " return v / scale_; "),
    ("v / scale_", "return.value", "v / scale_"),
    ("[&]", "assignment.rhs", "[&](double v) { return v / scale_; }"),
    # conditions: if, while, the ternary
    ("factor > 0.0", "condition", "factor > 0.0 && count != 0"),
    ("total > 100", "condition", "total > 100"),
    ("count > 1", "condition", "count > 1"),
    ("shape.größe", "condition", "shape.größe(1.0) > 0"),
    # return values
    ("0.0;\n    }", "return.value", "0.0"),
    ("count > 1", "return.value", "count > 1 ? total * scale_ : norm(total)"),
    # assignments: compound, plain, initialisers (=, braces, parentheses), member default
    ("factor;", "assignment.rhs", "factor"),
    ("2;", "assignment.rhs", "2"),
    ("static_cast", "assignment.rhs", "static_cast<double>(tag.size())"),
    ("0.0;\n    for", "assignment.rhs", "0.0"),
    ("Ursprung", "assignment.rhs", '"Ursprung ✓"'),
    ("Grüße", "assignment.rhs", '{"Grüße, 世界"}'),
    ("2.5", "assignment.rhs", "2.5"),
    # calls
    ("tag.size", "call.outer", "tag.size()"),
    ("tag.size", "call.inner", "tag.size()"),
    ("static_cast", "call.outer", "static_cast<double>(tag.size())"),
    ("total);\n        break", "call.inner", "total"),
    ("tick", "call.outer", "tick()"),
    # strings: non-ASCII, raw, an include path
    ("Grüße", "string", '"Grüße, 世界"'),
    ("Ursprung", "string", '"Ursprung ✓"'),
    ("raw \\n", "string", 'R"(raw \\n "text")"'),
    ("geometry", "string", '"geometry/shape.h"'),
    # blocks: braced bodies, a namespace body, a brace-less case body
    ("scale_ *= factor", "block", "\n        scale_ *= factor;\n    "),
    ("total += static", "block", "\n        total += static_cast<double>(tag.size());\n    "),
    ("total = norm", "block", "total = norm(total);\n        break;"),
    ("/// A labelled", "block", between(CODE, "\n\n/// A labelled", "norm(total);\n}\n\n")),
    # statements
    ("tick", "statement", "tick();"),
    ("for (const", "statement", between(CODE, "for (const", "size());\n    }")),
    ("switch", "statement", between(CODE, "switch", "break;\n    }")),
    ("namespace geo {", "statement", between(CODE, "namespace geo {", "norm(total);\n}\n\n}")),
    # imports, without the directive's newline
    ("#include <string>", "import", "#include <string>"),
    ("geometry", "import", '#include "geometry/shape.h"'),
    ("std::string;", "import", "using std::string;"),
])
def test_region_vocabulary_on_real_code(marker, name, expected):
    assert named(CODE, marker, name) == expected


def test_regions_are_listed_innermost_first_through_a_lambda():
    pos = at(CODE, "v / scale_")
    found = syntax.regions_at(CODE, pos, LANG)
    assert_nested(found, pos)
    assert [r.name for r in found] == [
        "return.value", "statement", "block", "lambda", "assignment.rhs", "statement",
        "function.inner", "block", "function.outer", "function.outer", "statement",
        "block", "statement",
    ]
    assert [r.node_type for r in found[-5:]] == [
        "primitive_type", "function_definition", "function_definition", "declaration_list",
        "namespace_definition"]


def test_attributes_and_templates_give_a_second_larger_outer_region():
    outers = [CODE[r.start:r.end].split("(")[0] for r in syntax.regions_at(CODE, at(CODE, "Shape::größe"), LANG)
              if r.name == "function.outer"]
    assert outers == ["double Shape::größe", "[[nodiscard]] double Shape::größe"]
    classes = [CODE[r.start:r.end].split("{")[0] for r in syntax.regions_at(CODE, at(CODE, "T x, y"), LANG)
               if r.name == "class.outer"]
    assert classes == ["struct Punkt ", "template <typename T>\nstruct Punkt "]
    # the `;` after a class is its statement's, not the class's; in a template, the template's
    statements = [CODE[r.start:r.end] for r in syntax.regions_at(CODE, at(CODE, "T x, y"), LANG)
                  if r.name == "statement"]
    assert statements[:2] == ["T x, y;", between(CODE, "template <", "✓\";\n};")]
    assert named(CODE, "public:", "statement") == SHAPE + ";"


@pytest.mark.parametrize("marker, first", [
    ("v / scale_", ["return.value", "statement", "block", "lambda", "statement", "function.inner",
                    "function.outer", "function.outer", "block", "statement"]),
    # `tag.size()` is also the inside of the static_cast call: one step covers both
    ("tag.size", ["call.outer", "call.outer", "statement", "block", "statement", "function.inner",
                  "function.outer", "function.outer", "block", "statement"]),
    ("Ursprung", ["string", "statement", "class.inner", "class.outer", "class.outer", "statement",
                  "block", "statement"]),
    ("factor, int count)", ["parameter", "parameters", "function.outer", "function.outer", "block",
                            "statement"]),
    ("2.5", ["assignment.rhs", "statement", "function.inner", "function.outer"]),
])
def test_expand_is_monotone(marker, first):
    doc = syntax.parse(CODE, LANG)
    chain = expansions(doc, CODE, marker)
    assert [r.name for r in chain] == first
    assert CODE[chain[-1].start:chain[-1].end].startswith(("namespace geo", "int main"))


def test_empty_brackets_and_braces_give_zero_width_insides():
    checks = [
        (at(CODE, "reset()") + len("reset("), ["parameters"]),
        (at(CODE, "{}\nprivate") + 1, ["function.inner", "block"]),
        (at(CODE, '{"rund"} {}') + len('{"rund"} {'), ["function.inner", "block"]),
        (at(CODE, "~Shape()") + len("~Shape("), ["parameters"]),
        (at(CODE, "tick()") + len("tick("), ["call.inner"]),
        (at(CODE, "tag.size()") + len("tag.size("), ["call.inner"]),
        (at(CODE, "main()") + len("main("), ["parameters"]),
    ]
    for pos, names in checks:
        for name in names:
            r = syntax.region(CODE, pos, name, LANG)
            assert r is not None, name
            assert (r.start, r.end) == (pos, pos), name
    text = "struct Leer {};\nauto f = []() {};\n"
    for marker, name in (("Leer {}", "class.inner"), ("() {}", "block")):
        pos = at(text, marker, len(marker) - 1)  # between the braces
        r = syntax.region(text, pos, name, LANG)
        assert (r.start, r.end) == (pos, pos)
    pos = at(text, "()") + 1
    r = syntax.region(text, pos, "parameters", LANG)
    assert (r.start, r.end) == (pos, pos)


def test_declarations_that_are_not_functions_or_assignments():
    text = textwrap.dedent('''\
        struct A {
            virtual void draw() = 0;
            void (*callback)(int);
            int* next = nullptr;
        };
        int main() {
            if (auto p = find(); p != nullptr) {}
            while (auto q = next()) {}
            do { spin(); } while (busy > 0);
            static_assert(sizeof(A) > 4, "größe");
        }
    ''')
    # a pure virtual's `= 0` is no initialiser; a function pointer member is no function
    assert named(text, "draw", "function.outer") == "virtual void draw() = 0;"
    assert all(r.name != "assignment.rhs" for r in syntax.regions_at(text, at(text, "0;"), LANG))
    assert [r.name for r in syntax.regions_at(text, at(text, "callback"), LANG)][:1] == ["statement"]
    assert all(r.name != "function.outer" for r in syntax.regions_at(text, at(text, "callback"), LANG))
    assert named(text, "nullptr;", "assignment.rhs") == "nullptr"
    # an if with an initialiser tests its condition; a while's declaration is its test, no statement
    assert named(text, "p != nullptr", "condition") == "p != nullptr"
    assert named(text, "auto p", "statement") == "auto p = find();"
    assert named(text, "auto q", "condition") == "auto q = next()"
    assert named(text, "auto q", "statement").startswith("while")
    assert named(text, "next()", "assignment.rhs") == "next()"
    assert named(text, "busy", "condition") == "busy > 0"
    assert named(text, "sizeof", "condition") == "sizeof(A) > 4"


def test_crlf_shifts_every_region_by_the_carriage_returns_before_it():
    crlf = crlf_copy(CODE, LANG, more_than=100)
    assert named(crlf, "#include <string>", "import") == "#include <string>"
    assert named(crlf, "T x, y", "class.inner") == '\r\n    T x, y;\r\n    string name = "Ursprung ✓";\r\n'
    assert named(crlf, "total = norm", "block") == "total = norm(total);\r\n        break;"
    assert named(crlf, "Grüße", "string") == '"Grüße, 世界"'


BROKEN = textwrap.dedent('''\
    int ok() { return 1; }

    int broken(int a {
        if (a > ) {
            return g(a;
        }
    }
''')


def test_broken_code_reports_errors_and_still_has_regions():
    doc = syntax.parse(BROKEN, LANG)
    assert doc.has_error is True
    problems = doc.problems()
    assert problems
    assert all(0 <= p.context[0] <= p.start <= p.end <= p.context[1] <= len(BROKEN) for p in problems)
    assert all(at(BROKEN, "int broken") <= p.start for p in problems)
    kinds = {p.kind for p in problems}
    assert {"ERROR", "MISSING )"} <= kinds
    # the unclosed `g(a;`: tree-sitter closes the call right after its argument
    assert [p.start for p in problems if p.kind == "MISSING )"] == [at(BROKEN, "g(a;") + len("g(a")]
    # the intact function keeps its regions
    assert named(BROKEN, "1;", "return.value") == "1"
    assert named(BROKEN, "return 1", "function.inner") == " return 1; "
    assert syntax.parse(CODE, LANG).problems() == []


def test_missing_closing_brace_is_a_problem():
    text = "int f() {\n    int x = 1;\n"
    doc = syntax.parse(text, LANG)
    assert doc.has_error
    assert [p.kind for p in doc.problems()] == ["MISSING }"]
    assert named(text, "1", "assignment.rhs") == "1"
