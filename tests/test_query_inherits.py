"""`; inherits:` in query files (dcoder/syntax/languages.py): inherited patterns first, nested,
each file once, and one clear error for an unknown parent, a cycle or a misplaced line; helper
`@_name` captures and `#not-kind-eq?`, which let a parent leave the child's nodes to the child.
Real tree-sitter grammars, query files written to a temporary folder."""

import pytest

from dcoder import syntax
from dcoder.errors import DcoderError
from dcoder.syntax import languages

TEXT = "int x;\n"  # `x` is an identifier in C, C++ and Python alike


@pytest.fixture()
def grammars(tmp_path, monkeypatch):
    """write(language, text): a regions.scm in a folder that replaces grammars/."""
    monkeypatch.setattr(languages, "GRAMMAR_DIRS", (tmp_path,))
    syntax.grammar.cache_clear()

    def write(language: str, text: str) -> None:
        (tmp_path / language).mkdir(exist_ok=True)
        (tmp_path / language / "regions.scm").write_text(text, encoding="utf-8")

    yield write
    syntax.grammar.cache_clear()


def names_at_x(language: str) -> list[str]:
    return [r.name for r in syntax.regions_at(TEXT, TEXT.index("x"), language)]


def test_inherited_patterns_come_first(grammars):
    grammars("c", "(identifier) @parameter\n")
    grammars("cpp", "; inherits: c\n(identifier) @string\n")
    # one node, two names: the tie goes to the pattern loaded first, the inherited one
    assert names_at_x("cpp") == ["parameter", "string"]
    assert [p.parent.name for p in languages.query_files("cpp")] == ["c", "cpp"]
    assert syntax.region_names("cpp") == ["parameter", "string"]
    assert names_at_x("c") == ["parameter"]  # the parent alone is unchanged


def test_inheritance_nests_and_loads_each_file_once(grammars):
    grammars("c", "(identifier) @parameter\n")
    grammars("cpp", ";inherits:c\n(identifier) @string\n")
    grammars("python", "; inherits: cpp, c\n(identifier) @lambda\n")  # c also through cpp: once
    assert [p.parent.name for p in languages.query_files("python")] == ["c", "cpp", "python"]
    assert syntax.grammar("python").query.pattern_count == 3
    assert names_at_x("python") == ["parameter", "string", "lambda"]


def test_an_unknown_parent_is_one_clear_error(grammars):
    grammars("cpp", "; inherits: c, nosuch\n(identifier) @string\n")
    grammars("c", "(identifier) @parameter\n")
    with pytest.raises(DcoderError, match=r"cpp/regions.scm: inherits 'nosuch', which has no grammars/nosuch/regions.scm$"):
        syntax.grammar("cpp")
    grammars("cpp", "; inherits: c,\n(identifier) @string\n")
    with pytest.raises(DcoderError, match=r"cpp/regions.scm:1: '; inherits:' wants language names"):
        syntax.grammar("cpp")


@pytest.mark.parametrize("files, message", [
    ({"cpp": "; inherits: c\n", "c": "; inherits: cpp\n"}, r"c/regions.scm: inherits in a cycle \(cpp -> c -> cpp\)"),
    ({"cpp": "; inherits: cpp\n"}, r"cpp/regions.scm: inherits in a cycle \(cpp -> cpp\)"),
])
def test_a_cycle_is_one_clear_error_naming_the_file(grammars, files, message):
    for language, text in files.items():
        grammars(language, text)
    with pytest.raises(DcoderError, match=message):
        syntax.grammar("cpp")


def test_inherits_must_be_the_first_line(grammars):
    grammars("c", "(identifier) @parameter\n")
    grammars("cpp", "(identifier) @string\n; inherits: c\n")
    with pytest.raises(DcoderError, match=r"cpp/regions.scm:2: '; inherits:' must be the file's first line"):
        syntax.grammar("cpp")


def test_an_inherited_pattern_the_grammar_lacks_names_the_inherited_file(grammars):
    grammars("c", "(variadic_parameter) @parameter\n")  # a C node C++ does not have
    grammars("cpp", "; inherits: c\n(identifier) @string\n")
    assert names_at_x("c") == []
    with pytest.raises(DcoderError, match=r"cpp/regions.scm: inherited .*c/regions.scm: Invalid node type"):
        syntax.grammar("cpp")


def test_helper_captures_feed_predicates_and_give_no_region(grammars):
    grammars("c", '(declaration declarator: (_) @_name (#not-eq? @_name "y")) @statement\n')
    assert names_at_x("c") == ["statement"]
    assert syntax.region_names("c") == ["statement"]
    assert syntax.regions_at("int y;\n", 4, "c") == []


def test_not_kind_eq_leaves_out_node_types_even_ones_the_grammar_lacks(grammars):
    text = "int a = f(1), b = 2;\n"
    grammars("c", "(init_declarator value: (_) @assignment.rhs (#not-kind-eq? @assignment.rhs call_expression lambda_expression))\n")
    assert [text[r.start:r.end] for r in syntax.parse(text, "c").regions()] == ["2"]
    grammars("cpp", "; inherits: c\n(lambda_expression) @lambda\n")
    lam = "auto g = [](int x) { return x; };\n"
    assert [r.name for r in syntax.parse(lam, "cpp").regions()] == ["lambda"]  # C's pattern leaves it out


def test_an_unknown_predicate_is_one_clear_error(grammars):
    grammars("c", "((identifier) @parameter (#kind-is? @parameter identifier))\n")
    with pytest.raises(DcoderError, match=r"c/regions.scm: unknown predicate\(s\) #kind-is\?"):
        syntax.grammar("c")


def test_cpp_inherits_c_and_typescript_inherits_javascript():
    assert [p.parent.name for p in languages.query_files("cpp")] == ["c", "cpp"]
    for language in ("typescript", "tsx"):
        assert [p.parent.name for p in languages.query_files(language)] == ["javascript", "typescript"]
