"""C syntax regions (grammars/c/regions.scm) on real code with real tree-sitter: the named
regions, innermost-first order, monotone expansion, zero-width insides of empty brackets, CRLF
offsets, preprocessor conditionals and parse errors."""

import textwrap
from functools import partial

import pytest
from regions_support import assert_nested, at, between, crlf_copy, expansions
from regions_support import named as named_in

from dcoder import syntax

LANG = "c"
named = partial(named_in, language=LANG)

CODE = textwrap.dedent('''\
    #include <stdio.h>
    #include "greet.h"

    typedef struct {
        const char *name;
        int größe;
    } person_t;

    enum mood { CALM, ANGRY = 2 };

    struct empty {};

    static int count_if(const char *s, int (*pred)(int), ...);

    [[nodiscard]] int answer(void) { return 42; }

    void reset() {}

    int greet(person_t *p, int times) {
        int total = 0, left[] = {1, 2};
        const char *msg = "Grüße, " "世界 ✓";
        person_t copy = { .name = "Zoë", .größe = 3 };
        if (p->größe > 0 && times) {
            total += count_if(msg, isalpha);
        } else {
            reset();
        }
        while (times-- > 0) {
            printf("%s %d\\n", p->name, total);
        }
        do {
            total -= 1;
        } while (total > 100);
        for (int i = 0; i < times; i++) {
            total = total > 10 ? total / 2 : total;
        }
        switch (total) {
        case CALM:
            total = answer();
            break;
        default:
            break;
        }
    #ifdef DEBUG
        puts("debug ünïcode");
    #endif
        return total * 2 + copy.größe;
    }
''')

GREET = CODE[CODE.index("int greet("):]
PERSON = between(CODE, "typedef struct", "} person_t;")


def test_query_compiles_with_the_shared_vocabulary_only():
    g = syntax.grammar(LANG)
    assert g is not None and g.query is not None
    names = set(syntax.region_names(LANG))
    assert names <= syntax.CAPTURES
    # C has no lambdas or comprehensions; doc comments are separate comment nodes.
    assert names == syntax.CAPTURES - {"lambda", "comprehension", "docstring"}
    assert syntax.note(LANG) is None
    assert syntax.parse(CODE, LANG).has_error is False


@pytest.mark.parametrize("marker, name, expected", [
    # functions: definitions and a prototype
    ("int greet", "function.outer", GREET.rstrip("\n")),
    ("int greet", "statement", GREET.rstrip("\n")),
    ("int total", "function.inner", GREET[GREET.index("{\n") + 1:GREET.rindex("}")]),
    ("return 42", "function.inner", " return 42; "),
    ("answer(void)", "function.outer", "[[nodiscard]] int answer(void) { return 42; }"),
    ("nodiscard", "decorator", "[[nodiscard]]"),
    ("count_if(const", "function.outer", "static int count_if(const char *s, int (*pred)(int), ...);"),
    ("person_t *p", "parameters", "person_t *p, int times"),
    ("person_t *p", "parameter", "person_t *p"),
    ("int times", "parameter", "int times"),
    ("const char *s", "parameters", "const char *s, int (*pred)(int), ..."),
    ("int (*pred)", "parameter", "int (*pred)(int)"),
    ("int), ...", "parameters", "int"),  # a function pointer's own parameter list
    ("...", "parameter", "..."),
    ("void)", "parameters", "void"),
    # structs and enums are classes; a typedef'd one has a second, larger class region
    ("const char *name", "class.inner", "\n    const char *name;\n    int größe;\n"),
    ("const char *name", "class.outer", PERSON[len("typedef "):PERSON.index(" person_t")]),
    ("person_t;", "class.outer", PERSON),
    ("person_t;", "statement", PERSON),
    ("CALM,", "class.inner", " CALM, ANGRY = 2 "),
    ("CALM,", "class.outer", "enum mood { CALM, ANGRY = 2 }"),
    ("CALM,", "statement", "enum mood { CALM, ANGRY = 2 };"),
    ("2 }", "assignment.rhs", "2"),
    ("struct empty", "statement", "struct empty {};"),
    # conditions: if / while / do (inside the parentheses), for, ternary
    ("p->größe > 0", "condition", "p->größe > 0 && times"),
    ("times-- > 0", "condition", "times-- > 0"),
    ("total > 100", "condition", "total > 100"),
    ("i < times", "condition", "i < times"),
    ("total > 10 ?", "condition", "total > 10"),
    # assignments: initialisers, designated initialisers, plain and compound assignments
    ("0, left", "assignment.rhs", "0"),
    ("{1, 2}", "assignment.rhs", "{1, 2}"),
    ("Grüße", "assignment.rhs", '"Grüße, " "世界 ✓"'),
    (".name", "assignment.rhs", '{ .name = "Zoë", .größe = 3 }'),
    ("Zoë", "assignment.rhs", '"Zoë"'),
    ("count_if(msg", "assignment.rhs", "count_if(msg, isalpha)"),
    ("1;\n    } while", "assignment.rhs", "1"),
    ("? total / 2", "assignment.rhs", "total > 10 ? total / 2 : total"),
    ("answer();", "assignment.rhs", "answer()"),
    ("int i = 0", "statement", "int i = 0;"),
    # calls
    ("count_if(msg", "call.outer", "count_if(msg, isalpha)"),
    ("isalpha", "call.inner", "msg, isalpha"),
    ("p->name, total", "call.inner", '"%s %d\\n", p->name, total'),
    ("printf", "statement", 'printf("%s %d\\n", p->name, total);'),
    ("reset();", "call.outer", "reset()"),
    # strings: one region over adjacent literals, one per literal
    ("Grüße", "string", '"Grüße, "'),
    ("世界", "string", '"世界 ✓"'),
    ("Zoë", "string", '"Zoë"'),
    ("%s %d", "string", '"%s %d\\n"'),
    ("greet.h", "string", '"greet.h"'),
    # returns
    ("total * 2", "return.value", "total * 2 + copy.größe"),
    ("42", "return.value", "42"),
    # blocks: braced bodies and a brace-less case body
    ("total -= 1", "block", "\n        total -= 1;\n    "),
    ("reset();", "block", "\n        reset();\n    "),
    ("total = answer", "block", "total = answer();\n        break;"),
    ("case CALM", "statement", "case CALM:\n        total = answer();\n        break;"),
    ("do {", "statement", between(CODE, "do {", "while (total > 100);")),
    # a statement inside #ifdef keeps its regions
    ("debug", "statement", 'puts("debug ünïcode");'),
    ("debug", "call.inner", '"debug ünïcode"'),
    # includes, without the newline that ends the directive
    ("stdio", "import", "#include <stdio.h>"),
    ("greet.h", "import", '#include "greet.h"'),
])
def test_region_vocabulary_on_c(marker, name, expected):
    assert named(CODE, marker, name) == expected


def test_regions_are_listed_innermost_first_through_nested_blocks():
    pos = at(CODE, "isalpha")
    found = syntax.regions_at(CODE, pos, LANG)
    assert_nested(found, pos)
    assert [r.name for r in found] == [
        "call.inner", "call.outer", "assignment.rhs", "statement", "block", "statement",
        "function.inner", "block", "function.outer", "statement",
    ]
    assert [r.node_type for r in found[-5:-1]] == [
        "if_statement", "compound_statement", "compound_statement", "function_definition"]


def test_void_is_no_parameter_and_a_pointer_variable_is_no_function():
    names = [r.name for r in syntax.regions_at(CODE, at(CODE, "void)"), LANG)]
    assert "parameter" not in names and names[0] == "parameters"
    text = "int (*handler)(int code);\nchar **split(const char *s);\n"
    assert [r.name for r in syntax.regions_at(text, at(text, "handler"), LANG)] == ["statement"]
    assert named(text, "code", "parameter") == "int code"
    assert named(text, "split", "function.outer") == "char **split(const char *s);"


@pytest.mark.parametrize("marker, first", [
    ("total / 2", ["assignment.rhs", "statement", "block", "statement", "function.inner", "function.outer"]),
    ("isalpha", ["call.inner", "call.outer", "statement", "block", "statement", "function.inner"]),
    ("世界", ["string", "string", "statement", "function.inner", "function.outer"]),
    ("answer();", ["call.outer", "statement", "block", "statement", "block", "statement", "function.inner"]),
    ("*pred", ["parameter", "parameters", "function.outer"]),
])
def test_expand_is_monotone(marker, first):
    doc = syntax.parse(CODE, LANG)
    chain = expansions(doc, CODE, marker)
    assert [r.name for r in chain][: len(first)] == first
    # the last step is a whole top-level definition
    assert chain[-1].name == "function.outer"
    assert CODE[chain[-1].start:chain[-1].end].startswith(("int greet", "static int count_if"))


def test_expand_steps_from_a_struct_field_to_its_typedef():
    doc = syntax.parse(CODE, LANG)
    chain = expansions(doc, CODE, "int größe")
    assert [(r.name, CODE[r.start:r.end]) for r in chain] == [
        ("class.inner", "\n    const char *name;\n    int größe;\n"),
        ("class.outer", PERSON[len("typedef "):PERSON.index(" person_t")]),
        ("class.outer", PERSON),
    ]


def test_empty_brackets_and_braces_give_zero_width_insides():
    empty_params = at(CODE, "reset() {") + len("reset(")
    empty_body = at(CODE, "{}\n\nint greet") + 1
    empty_call = at(CODE, "reset();") + len("reset(")
    empty_call_2 = at(CODE, "answer();") + len("answer(")
    empty_struct = at(CODE, "empty {}") + len("empty {")
    for pos, name in [(empty_params, "parameters"), (empty_body, "function.inner"), (empty_body, "block"),
                      (empty_call, "call.inner"), (empty_call_2, "call.inner"), (empty_struct, "class.inner")]:
        r = syntax.region(CODE, pos, name, LANG)
        assert r is not None, name
        assert (r.start, r.end) == (pos, pos), name


def test_crlf_shifts_every_region_by_the_carriage_returns_before_it():
    crlf = crlf_copy(CODE, LANG, more_than=80)
    assert named(crlf, "const char *name", "class.inner") == "\r\n    const char *name;\r\n    int größe;\r\n"
    assert named(crlf, "total -= 1", "block") == "\r\n        total -= 1;\r\n    "
    assert named(crlf, "stdio", "import") == "#include <stdio.h>"
    assert named(crlf, "total = answer", "block") == "total = answer();\r\n        break;"


def test_preprocessor_conditionals_keep_regions_and_give_conditions():
    text = textwrap.dedent('''\
        #if defined(FAST) && LEVEL > 2
        static int mode(void) { return 2; }
        #elif LEVEL
        static int mode(void) { return 1; }
        #else
        #error "no level"
        #endif
    ''')
    assert syntax.parse(text, LANG).has_error is False
    assert named(text, "FAST", "condition") == "defined(FAST) && LEVEL > 2"
    assert named(text, "LEVEL\n", "condition") == "LEVEL"
    assert named(text, "return 1", "function.outer") == "static int mode(void) { return 1; }"
    assert named(text, "2; }", "return.value") == "2"
    # branches that each open a function body do not parse, but raise nothing and leave the
    # intact function its regions
    split = "#ifdef A\nint f(int x) {\n#else\nint f(int x, int y) {\n#endif\n    return x;\n}\n"
    doc = syntax.parse(split, LANG)
    assert doc.has_error and [p.kind for p in doc.problems()] == ["ERROR"]
    assert named(split, "int y", "parameters") == "int x, int y"
    assert named(split, "x;\n}", "return.value") == "x"


BROKEN = textwrap.dedent('''\
    int ok(void) { return 1; }

    int broken(int a {
        if (a > ) {
            return a +;
        }
    }
''')


def test_broken_code_reports_errors_and_problems():
    doc = syntax.parse(BROKEN, LANG)
    assert doc.has_error is True
    problems = doc.problems()
    assert all(0 <= p.context[0] <= p.start <= p.end <= p.context[1] <= len(BROKEN) for p in problems)
    assert all(at(BROKEN, "int broken") <= p.start for p in problems)
    kinds = {p.kind for p in problems}
    assert "ERROR" in kinds and "MISSING identifier" in kinds  # `a +;` lacks its right operand
    # the intact function keeps its regions
    assert named(BROKEN, "return 1", "function.outer") == "int ok(void) { return 1; }"
    assert named(BROKEN, "1; }", "return.value") == "1"
    assert syntax.parse(CODE, LANG).problems() == []


def test_missing_closing_brace_is_a_problem():
    text = "int f(void) {\n    int x = 1;\n"
    doc = syntax.parse(text, LANG)
    assert doc.has_error
    assert [p.kind for p in doc.problems()] == ["MISSING }"]
    assert named(text, "1;", "assignment.rhs") == "1"
