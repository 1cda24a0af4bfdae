"""Rust syntax regions (grammars/rust/regions.scm) on real code with real tree-sitter: the named
regions, innermost-first order, monotone expansion, zero-width insides of empty brackets, CRLF
offsets and parse errors."""

import textwrap
from functools import partial

import pytest
from regions_support import assert_nested, at, between, crlf_copy, expansions
from regions_support import named as named_in

from dcoder import syntax

LANG = "rust"
named = partial(named_in, language=LANG)

CODE = textwrap.dedent('''\
    //! Inventory helpers.
    use std::collections::HashMap;
    use std::fmt::{self, Display};

    /// One stock item.
    #[derive(Debug, Clone)]
    pub struct Item {
        name: String,
        größe: u32,
    }

    pub trait Priced {
        fn price(&self) -> f64;
        fn label(&self) -> String {
            format!("{} €", self.price())
        }
    }

    impl Item {
        #[inline]
        pub fn new(name: &str, größe: u32) -> Self {
            Item { name: name.to_string(), größe }
        }

        fn total(&self, rates: &HashMap<String, f64>) -> f64 {
            if rates.is_empty() {
                return 0.0;
            }
            let mut sum = 0.0;
            for (key, rate) in rates.iter() {
                if key.starts_with(&self.name) && *rate > 0.0 {
                    sum += rate * self.größe as f64;
                }
            }
            while let Some(_) = stock_left(sum) {
                sum -= 1.0;
            }
            sum
        }
    }

    fn main() {
        let grüße = "Grüße, 世界";
        let mut stock = Vec::new();
        stock.push(Item::new(grüße, 3));
        let doubled: Vec<u32> = stock.iter().map(|it| it.größe * 2).collect();
        let nothing = || {};
        let kind = match doubled.len() {
            0 => r#"none"#,
            n if n > 10 => "many",
            _ => "some",
        };
        println!("{} {:?}", kind, doubled);
        nothing();
    }
''')


def test_query_compiles_with_the_shared_vocabulary_only():
    g = syntax.grammar(LANG)
    assert g is not None and g.query is not None
    names = set(syntax.region_names(LANG))
    assert names <= syntax.CAPTURES
    assert {"function.outer", "class.inner", "lambda", "decorator", "import", "call.inner"} <= names
    assert syntax.note(LANG) is None
    assert syntax.parse(CODE, LANG).has_error is False


@pytest.mark.parametrize("marker, name, expected", [
    # definitions: methods are functions, structs / traits / impls are classes
    ("fn price", "function.outer", "fn price(&self) -> f64;"),
    ("fn label", "function.outer", between(CODE, "fn label", "price())\n    }")),
    ("format!", "function.inner", "\n        format!(\"{} €\", self.price())\n    "),
    ("to_string", "function.inner", "\n        Item { name: name.to_string(), größe }\n    "),
    ("name: String", "class.inner", "\n    name: String,\n    größe: u32,\n"),
    ("name: String", "class.outer", between(CODE, "pub struct Item", "größe: u32,\n}")),
    ("Priced", "class.outer", between(CODE, "pub trait", "price())\n    }\n}")),
    ("impl Item", "class.outer", between(CODE, "impl Item", "sum\n    }\n}")),
    ("derive", "decorator", "#[derive(Debug, Clone)]"),
    ("inline", "decorator", "#[inline]"),
    ("name: &str", "parameters", "name: &str, größe: u32"),
    ("größe: u32)", "parameter", "größe: u32"),
    ("&self, rates", "parameter", "&self"),
    ("|it|", "lambda", "|it| it.größe * 2"),
    ("it| it", "parameters", "it"),
    ("it| it", "parameter", "it"),
    # expressions
    ("to_string", "call.outer", "name.to_string()"),
    ("Item::new", "call.outer", "Item::new(grüße, 3)"),
    ("grüße, 3", "call.inner", "grüße, 3"),
    ("Item::new", "call.inner", "Item::new(grüße, 3)"),
    ("println", "call.outer", 'println!("{} {:?}", kind, doubled)'),
    ('"{} {:?}', "call.inner", '"{} {:?}", kind, doubled'),
    ("rates.is_empty", "condition", "rates.is_empty()"),
    ("*rate", "condition", "key.starts_with(&self.name) && *rate > 0.0"),
    ("Some(_)", "condition", "let Some(_) = stock_left(sum)"),
    ("n > 10", "condition", "n > 10"),
    ("0.0;\n        }", "return.value", "0.0"),
    ("Item { name", "return.value", "Item { name: name.to_string(), größe }"),  # implicit return
    ("format!", "return.value", 'format!("{} €", self.price())'),
    ("Grüße", "string", '"Grüße, 世界"'),
    ("Grüße", "assignment.rhs", '"Grüße, 世界"'),
    ("none", "string", 'r#"none"#'),
    ("{} €", "string", '"{} €"'),
    ("Vec::new", "assignment.rhs", "Vec::new()"),
    ("rate * self", "assignment.rhs", "rate * self.größe as f64"),
    ("1.0;", "assignment.rhs", "1.0"),
    ("match doubled", "assignment.rhs", between(CODE, "match doubled", '"some",\n    }')),
    ("=> \"many\"", "block", between(CODE, "{\n        0 =>", '"some",\n    ')[1:]),
    # statements
    ("HashMap;", "import", "use std::collections::HashMap;"),
    ("Display", "import", "use std::fmt::{self, Display};"),
    ("stock.push", "statement", "stock.push(Item::new(grüße, 3));"),
    ("let mut sum", "statement", "let mut sum = 0.0;"),
    ("sum -= 1.0", "block", "\n            sum -= 1.0;\n        "),
    ("for (key", "statement", between(CODE, "for (key", "f64;\n            }\n        }")),
])
def test_region_vocabulary_on_real_code(marker, name, expected):
    assert named(CODE, marker, name) == expected


def test_regions_are_listed_innermost_first_through_nested_blocks():
    pos = at(CODE, "rate * self")
    found = syntax.regions_at(CODE, pos, LANG)
    assert_nested(found, pos)
    names = [r.name for r in found]
    assert names[:3] == ["assignment.rhs", "statement", "block"]
    statements = [CODE[r.start:r.end].split(" ")[0] for r in found if r.name == "statement"]
    assert statements == ["sum", "if", "for", "fn", "impl"]
    # among regions of one range, the more specific name comes first
    assert names.index("function.inner") + 1 == names.index("block", names.index("function.inner"))
    assert names[-2:] == ["class.outer", "statement"]


def test_attributes_give_a_second_larger_outer_region():
    outers = [CODE[r.start:r.end].split("(")[0] for r in syntax.regions_at(CODE, at(CODE, "pub fn new"), LANG)
              if r.name == "function.outer"]
    assert outers == ["pub fn new", "#[inline]\n    pub fn new"]  # without, then with its attribute
    classes = [CODE[r.start:r.end].split("{")[0] for r in syntax.regions_at(CODE, at(CODE, "name: String"), LANG)
               if r.name == "class.outer"]
    assert classes == ["pub struct Item ", "#[derive(Debug, Clone)]\npub struct Item "]


@pytest.mark.parametrize("marker, first", [
    ("rate * self", ["assignment.rhs", "statement", "block", "statement", "block", "statement",
                     "function.inner", "function.outer", "class.inner", "class.outer"]),
    ("it.größe", ["lambda", "call.outer", "call.outer", "statement", "function.inner", "function.outer"]),
    ('"many"', ["string", "block", "assignment.rhs", "statement", "function.inner", "function.outer"]),
    ("größe: u32)", ["parameter", "parameters", "function.outer", "function.outer", "class.inner"]),
])
def test_expand_is_monotone_up_to_the_item(marker, first):
    doc = syntax.parse(CODE, LANG)
    chain = expansions(doc, CODE, marker)
    assert [r.name for r in chain][: len(first)] == first
    assert CODE[chain[-1].start:chain[-1].end].startswith(("impl Item", "fn main"))


def test_empty_brackets_give_zero_width_insides():
    empty_params = at(CODE, "main()") + 5
    assert [(r.start, r.end) for r in syntax.regions_at(CODE, empty_params, LANG) if r.name == "parameters"] \
        == [(empty_params, empty_params)]
    empty_args = at(CODE, "nothing()") + 8
    args = syntax.region(CODE, empty_args, "call.inner", LANG)
    assert (args.start, args.end) == (empty_args, empty_args)
    bars = at(CODE, "|| {}") + 1
    params = syntax.region(CODE, bars, "parameters", LANG)
    assert (params.start, params.end) == (bars, bars)
    braces = at(CODE, "|| {}") + 4
    body = syntax.region(CODE, braces, "block", LANG)
    assert (body.start, body.end) == (braces, braces)
    text = "struct Unit {}\nfn f() {}\n"
    for marker, name in (("Unit {}", "class.inner"), ("f() {}", "function.inner")):
        pos = at(text, marker, len(marker) - 1)  # between the braces
        r = syntax.region(text, pos, name, LANG)
        assert (r.start, r.end) == (pos, pos)


def test_implicit_return_tails_and_macros():
    # the final expression of a function with `-> T` is its return value
    assert named(CODE, "sum\n    }\n}", "return.value") == "sum"
    text = textwrap.dedent('''\
        fn unit() {
            for x in xs { g(x) }
        }
        fn pick(a: bool) -> u8 { if a { 1 } else { 2 } }
        fn labeled() -> u8 { 'a: { 1 } }
        fn done() { finish() }
    ''')
    # without `-> T` a function returns (): its tail is a statement, not a return value
    assert all(r.name != "return.value" for r in syntax.regions_at(text, at(text, "for"), LANG))
    assert all(r.name != "return.value" for r in syntax.regions_at(text, at(text, "finish"), LANG))
    assert named(text, "for", "statement") == "for x in xs { g(x) }"
    assert named(text, "g(x)", "statement") == "g(x)"
    assert named(text, "finish", "statement") == "finish()"
    # a block-like tail (the grammar wraps it in an expression_statement) is the value too
    assert named(text, "if a", "return.value") == "if a { 1 } else { 2 }"
    assert named(text, "'a", "return.value") == "'a: { 1 }"
    assert named(text, "1 } }", "block") == "1"  # a labeled block: its statements, label kept out
    # a macro's token tree reads like a call's arguments
    assert named(CODE, "€", "call.inner") == '"{} €", self.price()'


def test_crlf_shifts_every_region_by_the_carriage_returns_before_it():
    crlf = crlf_copy(CODE, LANG)
    assert named(crlf, "rate * self", "assignment.rhs") == "rate * self.größe as f64"
    assert named(crlf, "größe: u32)", "parameters") == "name: &str, größe: u32"
    assert named(crlf, "name: String", "class.inner") == "\r\n    name: String,\r\n    größe: u32,\r\n"


def test_broken_code_reports_errors_and_still_has_regions():
    text = "fn ok() -> u8 { 1 }\n\nfn broken(a: u8 {\n    let x = ;\n    g(a\n}\n"
    doc = syntax.parse(text, LANG)
    assert doc.has_error
    problems = doc.problems()
    kinds = {p.kind for p in problems}
    assert "ERROR" in kinds and "MISSING )" in kinds  # `let x = ;`, the unclosed `(a: u8` and `g(a`
    assert all(at(text, "fn broken") <= p.start <= p.end <= len(text) for p in problems)
    assert named(text, "1 }", "return.value") == "1"  # the intact function keeps its regions
    assert named(text, "a: u8", "parameters") == "a: u8"
    assert syntax.parse(CODE, LANG).problems() == []
