"""The languages dcoder can parse: file names and LSP ids to grammar names, tree-sitter parsers,
and each language's region queries (``grammars/<language>/regions.scm``, vocabulary in
grammars/README.md). A query file may begin with ``; inherits: other[,more]``: the other
languages' queries come first, then its own patterns.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from dcoder.errors import DcoderError

# One source, grammars/ at the top of the checkout; a wheel installs it as dcoder/grammars (pyproject package-dir).
GRAMMAR_DIRS = (Path(__file__).parents[1] / "grammars", Path(__file__).parents[2] / "grammars")
QUERY_FILE = "regions.scm"

EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".tsx": "tsx",
    ".rs": "rust", ".go": "go", ".java": "java", ".kt": "kotlin", ".scala": "scala",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".php": "php", ".lua": "lua", ".swift": "swift",
    ".sh": "bash", ".bash": "bash", ".hs": "haskell", ".ml": "ocaml", ".jl": "julia", ".r": "r",
}
# LSP language identifiers that differ from the grammar name.
LANGUAGE_IDS = {"typescriptreact": "tsx", "javascriptreact": "javascript", "shellscript": "bash"}


_WORD = re.compile(r"[^\W\d]\w*")


@dataclass(frozen=True)
class Grammar:
    name: str
    language: object  # tree_sitter.Language
    query: object | None  # tree_sitter.Query, None when the language has no regions.scm
    inside: dict[int, frozenset[str]]  # pattern index -> captures that exclude their delimiters

    def parser(self):
        from tree_sitter import Parser

        return Parser(self.language)

    @functools.cached_property
    def keywords(self) -> tuple[str, ...]:
        """The grammar's keywords: its unnamed node kinds that are words (``in``, ``return``)."""
        lang = self.language
        kinds = (lang.node_kind_for_id(i) for i in range(lang.node_kind_count)
                 if not lang.node_kind_is_named(i) and lang.node_kind_is_visible(i))
        return tuple(sorted({k for k in kinds if k and _WORD.fullmatch(k)}))


def language_of(path: str | Path | None = None, language_id: str | None = None) -> str | None:
    """Grammar name for an LSP language id or, failing that, a file name's extension."""
    if language_id:
        return LANGUAGE_IDS.get(language_id, language_id)
    if path is not None:
        return EXTENSIONS.get(Path(path).suffix.lower())
    return None


# The capture names a regions.scm may use: one vocabulary for every language (grammars/README.md).
CAPTURES = frozenset({
    "function.outer", "function.inner", "class.outer", "class.inner", "block", "statement",
    "decorator", "parameters", "parameter", "lambda", "call.outer", "call.inner", "condition",
    "return.value", "assignment.rhs", "string", "docstring", "comprehension", "import",
})


def helper(capture: str) -> bool:
    """``@_name`` captures only feed a pattern's predicates (``#not-match? @_name ...``): no region."""
    return capture.startswith("_")


# Predicates tree-sitter checks itself, and the ones dcoder adds (``kind_predicate``).
PREDICATES = frozenset({"eq?", "not-eq?", "any-eq?", "any-not-eq?", "match?", "not-match?", "any-match?",
                        "any-not-match?", "any-of?", "not-any-of?", "set!", "is?", "is-not?",
                        "kind-eq?", "not-kind-eq?"})
_PREDICATE = re.compile(r"\(#([\w-]+[?!])")


def kind_predicate(name: str, args, pattern: int, captures) -> bool:
    """``(#not-kind-eq? @capture type ...)``, as nvim-treesitter's: the captured node is none of
    the types; ``(#kind-eq? ...)``: it is one of them. The types are plain words, so a file
    another grammar inherits may name that grammar's node types (C leaves C++'s lambdas to
    cpp/regions.scm), and ``(_) @x (#kind-eq? @x t)`` takes a child that the inheriting
    grammar's parent node cannot have (tree-sitter refuses ``(parent (t))`` there)."""
    (capture, _), *types = args
    kinds = {word for word, _ in types}
    return all((node.type in kinds) == (name == "kind-eq?") for node in captures.get(capture, ()))


# Grammars that extend another one's node types and share its query file.
SHARED_QUERIES = {"tsx": "typescript"}


def grammar_dir(language: str, file: str = QUERY_FILE) -> Path | None:
    """The folder holding ``language``'s query ``file`` (regions.scm, locals.scm)."""
    language = SHARED_QUERIES.get(language, language)
    for root in GRAMMAR_DIRS:
        if (root / language / file).is_file():
            return root / language
    return None


_INHERITS = re.compile(r";+\s*inherits\s*:(.*)")


def query_files(language: str, file: str = QUERY_FILE) -> dict[Path, str]:
    """The text of ``language``'s query ``file`` (regions.scm, locals.scm) and of the files it
    inherits (``; inherits: a,b`` on its first line: the same file of those languages), inherited
    ones first: depth first, in the order listed, each file once. Empty when the language has no
    such file."""
    folder = grammar_dir(language, file)
    files: dict[Path, str] = {}
    if folder is not None:
        _gather(folder / file, (), files)
    return files


def _gather(path: Path, chain: tuple[Path, ...], files: dict[Path, str]) -> None:
    if path in chain:
        cycle = " -> ".join(p.parent.name for p in (*chain[chain.index(path):], path))
        raise DcoderError(f"{chain[-1]}: inherits in a cycle ({cycle})")
    if path in files:
        return
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines() or [""]
    for number, line in enumerate(lines[1:], 2):
        if _INHERITS.match(line.strip()):
            raise DcoderError(f"{path}:{number}: '; inherits:' must be the file's first line")
    found = _INHERITS.match(lines[0].strip())
    parents = [name.strip() for name in found.group(1).split(",")] if found else []
    if not all(parents):
        raise DcoderError(f"{path}:1: '; inherits:' wants language names separated by commas")
    for parent in parents:
        folder = grammar_dir(parent, path.name)
        if folder is None:
            raise DcoderError(f"{path}: inherits {parent!r}, which has no grammars/{parent}/{path.name}")
        _gather(folder / path.name, (*chain, path), files)
    files[path] = text


def _ts_language(name: str):
    if name == "python":
        import tree_sitter_python
        from tree_sitter import Language

        return Language(tree_sitter_python.language())
    try:
        from tree_sitter_language_pack import get_language
    except ImportError:
        return None
    try:
        return get_language(name)
    except Exception:  # the pack raises its own error types (not found, not downloaded, ...)
        return None


@functools.cache
def grammar(language: str | None) -> Grammar | None:
    """The parser and region queries of ``language``; None when there is no parser for it."""
    if not language:
        return None
    ts_language = _ts_language(language)
    if ts_language is None:
        return None
    files = query_files(language)
    if not files:
        return Grammar(language, ts_language, None, {})
    query = compile_query(ts_language, files, CAPTURES)
    inside = {}
    for i in range(query.pattern_count):
        names = [v for k, v in query.pattern_settings(i).items() if k == "inside"]
        if names:
            inside[i] = frozenset(names)
    return Grammar(language, ts_language, query, inside)


def compile_query(ts_language, files: dict[Path, str], captures: frozenset[str]):
    """The tree_sitter.Query of ``files`` (from ``query_files``); one DcoderError naming the file
    whose patterns do not compile, or that uses a predicate or a capture name outside
    ``PREDICATES`` and ``captures``."""
    from tree_sitter import Query, QueryError

    path = next(reversed(files))
    try:
        query = Query(ts_language, "\n".join(files.values()))
    except QueryError as exc:
        raise DcoderError(_query_error(ts_language, files, exc)) from None
    for part, text in files.items():
        unknown = sorted(set(_PREDICATE.findall(_code(text))) - PREDICATES)
        if unknown:
            raise DcoderError(f"{part}: unknown predicate(s) {', '.join('#' + u for u in unknown)} (see grammars/README.md)")
    names = {query.capture_name(i) for i in range(query.capture_count)}
    unknown = sorted({n for n in names if not helper(n)} - captures)
    if unknown:
        raise DcoderError(f"{path}: unknown capture name(s) {', '.join(unknown)} (see grammars/README.md)")
    return query


def _code(text: str) -> str:
    """A query file without its comments and strings."""
    return re.sub(r'"(?:[^"\\]|\\.)*"|;[^\n]*', "", text)


def _query_error(ts_language, files: dict[Path, str], exc: Exception) -> str:
    """One line naming the file whose patterns do not compile: the rows in ``exc`` count the
    lines of all the files together, so each is compiled alone to find it."""
    from tree_sitter import Query, QueryError

    path = next(reversed(files))
    for part, text in files.items():
        try:
            Query(ts_language, text)
        except QueryError as alone:
            return f"{path}: {alone}" if part == path else f"{path}: inherited {part}: {alone}"
    return f"{path}: {exc}"


def note(language: str | None) -> str | None:
    """One line saying why ``language`` has no syntax regions, or None when it has them."""
    if not language:
        return "unknown language: no syntax regions, using plain character spans"
    g = grammar(language)
    if g is None:
        return (f"no tree-sitter parser for {language} (pip install 'dcoder-diffusion[languages]'): "
                "no syntax regions, using plain character spans")
    if g.query is None:
        return f"no grammars/{language}/{QUERY_FILE}: no syntax regions for {language}, using plain character spans"
    return None


def region_names(language: str | None) -> list[str]:
    """The region names the language's query files define, in file order (inherited files first)."""
    g = grammar(language)
    if g is None or g.query is None:
        return []
    q = g.query
    return list(dict.fromkeys(n for n in map(q.capture_name, range(q.capture_count)) if not helper(n)))
