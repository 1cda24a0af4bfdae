"""Java syntax regions (grammars/java/regions.scm) on real code with real tree-sitter: the named
regions, innermost-first order, monotone expansion, zero-width insides of empty brackets, CRLF
offsets and parse errors."""

import textwrap
from functools import partial

import pytest
from regions_support import assert_nested, at, between, crlf_copy, expansions
from regions_support import named as named_in

from dcoder import syntax

LANG = "java"
named = partial(named_in, language=LANG)

CODE = textwrap.dedent('''\
    package shop.cart;

    import java.util.*;
    import static java.util.Objects.requireNonNull;

    /** A shopping cart that knows its Größe. */
    @SuppressWarnings(value = "unchecked")
    public final class Warenkorb<T extends Item> implements Iterable<T> {
        private final List<T> items = new ArrayList<>();
        private double größe = 0.0;

        public Warenkorb(List<T> initial, String... tags) {
            super();
            requireNonNull(initial, "initial ✓");
            items.addAll(initial);
        }

        @Override
        public Iterator<T> iterator() {
            return items.iterator();
        }

        public void clear() {}

        double total(double rate, @Deprecated boolean rund) {
            double sum = 0;
            for (int i = 0; i < items.size(); i++) {
                sum += items.get(i).price() * rate;
            }
            while (sum > 1_000) {
                sum /= 2;
            }
            do {
                größe = sum;
            } while (größe < 0);
            Function<Double, Double> round = x -> Math.round(x * 100) / 100.0;
            BinaryOperator<Double> add = (a, b) -> { return a + b; };
            if (rund && sum != 0) {
                sum = round.apply(sum);
            }
            switch (items.size()) {
                case 0:
                    sum = add.apply(sum, 1.0);
                    break;
                default:
            }
            String label = sum > 100 ? "teuer €" : """
                günstig
                """;
            Runnable tick = () -> {};
            return sum * rate;
        }
    }

    interface Item {
        double price();
    }

    enum Farbe { ROT("rot"), GRÜN("grün"); Farbe(String name) {} }

    record Punkt(int x, int y) {}
''')

CLASS = between(CODE, "@SuppressWarnings", "return sum * rate;\n    }\n}")
TOTAL = between(CODE, "double total", "return sum * rate;\n    }")
CONSTRUCTOR = between(CODE, "public Warenkorb(", "items.addAll(initial);\n    }")


def test_query_compiles_with_the_shared_vocabulary_only():
    g = syntax.grammar(LANG)
    assert g is not None and g.query is not None
    names = set(syntax.region_names(LANG))
    assert names <= syntax.CAPTURES
    # Java has no comprehensions; a Javadoc comment is not exposed as a docstring.
    assert names == syntax.CAPTURES - {"comprehension", "docstring"}
    assert syntax.note(LANG) is None
    assert syntax.parse(CODE, LANG).has_error is False


@pytest.mark.parametrize("marker, name, expected, offset", [(case + (0,))[:4] for case in [
    # classes, interfaces, enums, records; annotations are modifiers inside the declaration
    ("Warenkorb<T", "class.outer", CLASS),
    ("Warenkorb<T", "statement", CLASS),
    ("private double", "class.inner", CLASS[CLASS.index("{\n") + 1:-1]),
    ("double price", "class.outer", "interface Item {\n    double price();\n}"),
    ("double price", "class.inner", "\n    double price();\n"),
    ("ROT", "class.outer", 'enum Farbe { ROT("rot"), GRÜN("grün"); Farbe(String name) {} }'),
    ("ROT", "class.inner", ' ROT("rot"), GRÜN("grün"); Farbe(String name) {} '),
    ("Punkt", "class.outer", "record Punkt(int x, int y) {}"),
    ("int x,", "parameters", "int x, int y"),  # a record header
    ("int y", "parameter", "int y"),
    # methods and constructors are functions
    ("double total", "function.outer", TOTAL),
    ("double sum = 0", "function.inner", TOTAL[TOTAL.index("{\n") + 1:-1]),
    ("public Warenkorb(", "function.outer", CONSTRUCTOR),
    ("super();", "function.inner", CONSTRUCTOR[CONSTRUCTOR.index("{\n") + 1:-1]),
    ("public Iterator", "function.outer", between(CODE, "@Override", "items.iterator();\n    }")),
    ("double price", "function.outer", "double price();"),  # bodiless interface method
    ("Farbe(String", "function.outer", "Farbe(String name) {}"),
    ("List<T> initial", "parameters", "List<T> initial, String... tags"),
    ("List<T> initial", "parameter", "List<T> initial"),
    ("String... tags", "parameter", "String... tags"),
    ("boolean rund", "parameter", "@Deprecated boolean rund"),
    ("boolean rund", "parameters", "double rate, @Deprecated boolean rund"),
    # annotations
    ("@Override", "decorator", "@Override"),
    ("@Deprecated", "decorator", "@Deprecated"),
    ("@SuppressWarnings", "decorator", '@SuppressWarnings(value = "unchecked")'),
    ("value =", "call.outer", 'SuppressWarnings(value = "unchecked")'),
    ("value =", "call.inner", 'value = "unchecked"'),
    # lambdas: a bare parameter, inferred (untyped) parameters, a block body
    ("x -> Math", "lambda", "x -> Math.round(x * 100) / 100.0"),
    ("x -> Math", "parameters", "x"),
    ("x -> Math", "parameter", "x"),
    ("x -> Math", "assignment.rhs", "x -> Math.round(x * 100) / 100.0"),
    ("a, b)", "parameters", "a, b"),
    ("b) ->", "parameter", "b"),
    ("a + b", "lambda", "(a, b) -> { return a + b; }"),
    ("a + b", "return.value", "a + b"),
    ("a + b", "block", " return a + b; "),
    # calls: method invocations (receiver included), `new`, `super(...)`, enum constants
    ("requireNonNull(initial", "call.outer", 'requireNonNull(initial, "initial ✓")'),
    ("initial, \"", "call.inner", 'initial, "initial ✓"'),
    ("price() *", "call.outer", "items.get(i).price()"),
    ("get(i)", "call.outer", "items.get(i)"),
    ("x * 100", "call.inner", "x * 100"),
    ("new ArrayList", "call.outer", "new ArrayList<>()"),
    ("new ArrayList", "assignment.rhs", "new ArrayList<>()"),
    ("super();", "call.outer", "super()"),
    ("super();", "statement", "super();"),
    ('ROT("rot")', "call.outer", 'ROT("rot")'),
    ('"grün"', "call.inner", '"grün"'),
    # conditions: parenthesised tests without their parentheses, for, do-while, ternary
    ("rund && sum", "condition", "rund && sum != 0"),
    ("sum > 1_000", "condition", "sum > 1_000"),
    ("größe < 0", "condition", "größe < 0"),
    ("i < items", "condition", "i < items.size()"),
    ("sum > 100", "condition", "sum > 100"),
    # return values and assignments: fields, locals, plain and compound
    ("items.iterator();", "return.value", "items.iterator()"),
    ("sum * rate", "return.value", "sum * rate"),
    ("= 0.0", "assignment.rhs", "0.0", 2),
    ("price() * rate", "assignment.rhs", "items.get(i).price() * rate"),
    ("/= 2", "assignment.rhs", "2", 3),
    ("größe = sum", "assignment.rhs", "sum", 8),
    ("round.apply", "assignment.rhs", "round.apply(sum)"),
    ("sum > 100", "assignment.rhs", between(CODE, "sum > 100", 'günstig\n            """')),
    # strings: plain (non-ASCII) and a text block
    ("initial ✓", "string", '"initial ✓"'),
    ("teuer", "string", '"teuer €"'),
    ("günstig", "string", between(CODE, '"""\n', 'günstig\n            """')),
    # statements and blocks, the brace-less case body included
    ("java.util.*", "import", "import java.util.*;"),
    ("requireNonNull;", "import", "import static java.util.Objects.requireNonNull;"),
    ("shop.cart", "statement", "package shop.cart;"),
    ("private final List", "statement", "private final List<T> items = new ArrayList<>();"),
    ("int i = 0", "statement", "int i = 0;"),
    ("sum /= 2", "block", "\n            sum /= 2;\n        "),
    ("sum = add", "block", "sum = add.apply(sum, 1.0);\n                break;"),
    ("sum, 1.0", "call.inner", "sum, 1.0"),
    ("break;", "statement", "break;"),
    ("switch (", "statement", between(CODE, "switch (", "default:\n        }")),
]])
def test_region_vocabulary_on_real_code(marker, name, expected, offset):
    assert named(CODE, marker, name, offset) == expected


def test_javadoc_is_no_docstring_and_lies_outside_the_class():
    # `/** */` is a block_comment beside the class declaration, not a part of it
    assert syntax.regions_at(CODE, at(CODE, "shopping"), LANG) == []
    assert CLASS.startswith("@SuppressWarnings")


MORE = textwrap.dedent('''\
    class Outer extends Base.Inner {
        { count = 1; }
        Outer(Base b) { b.super(); }
        String describe(Object o) {
            try (var in = open("données.txt")) {
                Runnable r = new Runnable() { public void run() {} };
            }
            return switch (o) {
                case String s when s.isEmpty() -> "leer";
                case Integer i -> { yield "zahl"; }
                default -> "?";
            };
        }
    }
''')


@pytest.mark.parametrize("marker, name, expected", [
    ("{ count", "statement", "{ count = 1; }"),  # an instance initializer: a bare block
    ("count = 1", "block", " count = 1; "),
    ("b.super", "call.outer", "b.super()"),
    ("b.super", "function.inner", " b.super(); "),
    ("open(", "assignment.rhs", 'open("données.txt")'),
    ("données", "call.inner", '"données.txt"'),
    ("public void run", "class.outer", "new Runnable() { public void run() {} }"),
    ("public void run", "class.inner", " public void run() {} "),
    ("public void run", "function.outer", "public void run() {}"),
    ("s.isEmpty", "condition", "s.isEmpty()"),  # a switch rule's `when` guard
    ("switch (o)", "return.value", between(MORE, "switch (o)", '"?";\n        }')),
    ("yield", "block", ' yield "zahl"; '),
])
def test_initializers_anonymous_classes_resources_and_guards(marker, name, expected):
    assert syntax.parse(MORE, LANG).has_error is False
    assert named(MORE, marker, name) == expected

def test_regions_are_listed_innermost_first_through_nested_blocks():
    pos = at(CODE, "price() * rate")
    found = syntax.regions_at(CODE, pos, LANG)
    assert_nested(found, pos)
    assert [r.name for r in found] == [
        "call.outer", "assignment.rhs", "statement", "block", "statement",
        "function.inner", "block", "function.outer", "statement",
        "class.inner", "block", "class.outer", "statement",
    ]
    assert [CODE[r.start:r.end].split(" ")[0] for r in found if r.name == "statement"] == [
        "sum", "for", "double", "@SuppressWarnings(value"]
    assert [r.node_type for r in found[-4:]] == ["class_body", "class_body", "class_declaration",
                                                 "class_declaration"]


@pytest.mark.parametrize("marker, first", [
    # a lambda and the initialiser it is have one range: expand steps over it once
    ("a + b", ["return.value", "statement", "block", "lambda", "statement",
               "function.inner", "function.outer", "class.inner", "class.outer"]),
    ("x * 100", ["call.inner", "call.outer", "lambda", "statement", "function.inner"]),
    ("initial ✓", ["string", "call.inner", "call.outer", "statement", "function.inner", "function.outer"]),
    ("größe < 0", ["condition", "statement", "function.inner"]),
    # the case body, then the switch's braces, then the switch
    ("1.0)", ["call.inner", "call.outer", "statement", "block", "block", "statement", "function.inner"]),
    ("@Deprecated", ["decorator", "parameter", "parameters", "function.outer", "class.inner"]),
])
def test_expand_is_monotone_up_to_the_class(marker, first):
    doc = syntax.parse(CODE, LANG)
    chain = expansions(doc, CODE, marker)
    assert [r.name for r in chain][: len(first)] == first
    assert CODE[chain[-1].start:chain[-1].end] == CLASS


def test_expand_from_a_selection():
    sel = (at(CODE, "items.iterator();"), at(CODE, "items.iterator();") + len("items.iterator()"))
    r = syntax.expand(CODE, sel, LANG)
    assert (r.name, CODE[r.start:r.end]) == ("statement", "return items.iterator();")
    r = syntax.expand(CODE, (r.start, r.end), LANG)
    assert r.name == "function.inner" and CODE[r.start:r.end] == "\n        return items.iterator();\n    "
    # the string is the constant's whole argument list: the next larger region is the call
    enum_arg = (at(CODE, '"rot"'), at(CODE, '"rot"') + len('"rot"'))
    r = syntax.expand(CODE, enum_arg, LANG)
    assert (r.name, CODE[r.start:r.end]) == ("call.outer", 'ROT("rot")')


def test_empty_brackets_and_braces_give_zero_width_insides():
    cases = [
        (at(CODE, "iterator() {") + len("iterator("), "parameters"),
        (at(CODE, "clear()") + len("clear("), "parameters"),
        (at(CODE, "clear() {}") + len("clear() {"), "function.inner"),
        (at(CODE, "clear() {}") + len("clear() {"), "block"),
        (at(CODE, "super()") + len("super("), "call.inner"),
        (at(CODE, "ArrayList<>()") + len("ArrayList<>("), "call.inner"),
        (at(CODE, "items.iterator()") + len("items.iterator("), "call.inner"),
        (at(CODE, "() -> {}") + 1, "parameters"),
        (at(CODE, "() -> {}") + len("() -> {"), "block"),
        (at(CODE, "name) {}") + len("name) {"), "function.inner"),
        (at(CODE, "y) {}") + len("y) {"), "class.inner"),
        (at(CODE, "price();") + len("price("), "parameters"),
    ]
    for pos, name in cases:
        r = syntax.region(CODE, pos, name, LANG)
        assert r is not None, (name, pos)
        assert (r.start, r.end) == (pos, pos), name


def test_crlf_shifts_every_region_by_the_carriage_returns_before_it():
    crlf = crlf_copy(CODE, LANG, more_than=150)
    assert named(crlf, "double price", "class.inner") == "\r\n    double price();\r\n"
    assert named(crlf, "price() * rate", "assignment.rhs") == "items.get(i).price() * rate"
    assert named(crlf, "günstig", "string") == '"""\r\n            günstig\r\n            """'
    assert named(crlf, "sum = add", "block") == "sum = add.apply(sum, 1.0);\r\n                break;"


BROKEN = textwrap.dedent('''\
    class Ok {
        int one() { return 1; }
    }

    class Broken {
        void f(int a) {
            int x = ;
            g(a;
        }
    }
''')


def test_broken_code_reports_errors_and_still_has_regions():
    doc = syntax.parse(BROKEN, LANG)
    assert doc.has_error is True
    problems = doc.problems()
    assert all(0 <= p.context[0] <= p.start <= p.end <= p.context[1] <= len(BROKEN) for p in problems)
    # the stray `;` of `int x = ;` and the unclosed `g(a`
    assert [(p.kind, BROKEN[p.start:p.end]) for p in problems] == [("ERROR", ";"), ("MISSING )", "")]
    assert problems[0].start == at(BROKEN, "= ;") + 2
    assert problems[1].start == at(BROKEN, "g(a") + 3 and BROKEN[slice(*problems[1].context)] == "(a"
    # the intact class and the broken method's good parts keep their regions
    assert named(BROKEN, "1;", "return.value") == "1"
    assert named(BROKEN, "int one", "function.outer") == "int one() { return 1; }"
    assert named(BROKEN, "int a", "parameters") == "int a"
    assert syntax.parse(CODE, LANG).problems() == []


def test_missing_closing_brace_is_a_problem():
    text = "class A {\n    void f() {\n        int x = 1;\n    }\n"
    doc = syntax.parse(text, LANG)
    assert doc.has_error
    assert [p.kind for p in doc.problems()] == ["MISSING }"]
    assert named(text, "1;", "assignment.rhs") == "1"
