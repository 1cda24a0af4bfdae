"""Languages (dcoder/syntax/languages.py): file names and LSP ids to grammars, the fallback
for languages without one, query files and their capture vocabulary, grammar keywords."""

import pytest
from regions_support import CODE

from dcoder import syntax


def test_language_from_extension_and_lsp_id():
    assert syntax.language_of("a/b.py") == "python" and syntax.language_of("x.PYI") == "python"
    assert syntax.language_of("main.rs") == "rust" and syntax.language_of("notes.txt") is None
    assert syntax.language_of(language_id="python") == "python"
    assert syntax.language_of("x.txt", language_id="typescriptreact") == "tsx"
    assert "function.inner" in syntax.region_names("python")


def test_unknown_language_falls_back_with_a_note():
    assert syntax.parse(CODE, None) is None and syntax.regions_at(CODE, 5, None) == []
    assert syntax.parse(CODE, "no-such-language") is None
    assert syntax.region_names("no-such-language") == []
    for lang in (None, "no-such-language"):
        line = syntax.note(lang)
        assert line and "\n" not in line and "plain character spans" in line
    assert syntax.note("python") is None


def test_a_query_file_with_an_unknown_capture_name_is_a_clear_error(tmp_path, monkeypatch):
    from dcoder.errors import DcoderError
    from dcoder.syntax import languages

    (tmp_path / "javascript").mkdir()
    (tmp_path / "javascript" / "regions.scm").write_text("(function_declaration body: (_) @function.body)\n")
    monkeypatch.setattr(languages, "GRAMMAR_DIRS", (tmp_path,))
    syntax.grammar.cache_clear()
    try:
        with pytest.raises(DcoderError, match=r"regions.scm: unknown capture name\(s\) function.body"):
            syntax.grammar("javascript")
    finally:
        syntax.grammar.cache_clear()


def test_every_query_file_uses_the_shared_vocabulary():
    names = {lang: set(syntax.region_names(lang)) for lang in ("python", "javascript", "typescript", "tsx", "rust", "go", "java", "c", "cpp", "ruby")}
    assert all(n and n <= syntax.CAPTURES for n in names.values()), names
    assert names["python"] == syntax.CAPTURES  # Python has every kind of region
    assert names["tsx"] == names["typescript"]  # tsx shares the TypeScript query


def test_grammar_keywords_come_from_the_grammar():
    from dcoder import syntax

    words = syntax.grammar("python").keywords
    assert {"in", "return", "lambda", "except", "not"} <= set(words)
    assert not {"(", ":", "identifier", ""} & set(words)
