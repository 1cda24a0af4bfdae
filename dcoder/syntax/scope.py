"""Names in scope at a position: what the language's ``grammars/<language>/locals.scm`` defines
in the scopes around it, the attributes set on ``self``/``cls`` in its class, and the free names
read around it and at the top of the file (imports, builtins, module globals). The sampler leans towards them
(dcoder.engine.names); the query conventions are in grammars/README.md.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from dcoder.syntax.document import Document
from dcoder.syntax.languages import compile_query, kind_predicate, query_files

LOCALS_FILE = "locals.scm"
CAPTURES = frozenset({"local.scope", "local.definition", "local.definition.field", "local.reference"})
MAX_NAMES = 4096  # a generated file may define more; the nearest scopes' names come first
# Depth of the nodes a module-level definition's pattern starts at (module > statement > assignment).
TOP_DEPTH = 2
_NAME = re.compile(r"[^\W\d]\w*")
# The scopes whose fields a ``self.x``/``this.x`` in a nested method sets (Python, JavaScript,
# TypeScript, Java, Ruby).
_CLASS_TYPES = ("class_definition", "class_declaration", "abstract_class_declaration", "class",
                "enum_declaration", "record_declaration")
# Fields that lead from a scope node to its own name: a function's or class's ``name``, and the
# chain of C declarators (``char *f(...)``: pointer_declarator > function_declarator > identifier).
_NAME_FIELDS = ("name", "declarator")
_SIGILS = "@:"  # Ruby's @size, @@count and :size are the word size to the sampler


@functools.cache
def _query(language: str):
    """The language's locals query (with the locals.scm files it inherits); None when it has no
    locals.scm."""
    from dcoder.syntax.languages import grammar

    files, g = query_files(language, LOCALS_FILE), grammar(language)
    if not files or g is None:
        return None
    return compile_query(g.language, files, CAPTURES)


@dataclass(frozen=True)
class _Scopes:
    spans: tuple[tuple[int, int], ...]  # byte range of each scope node
    defined: tuple[tuple[str, int], ...]  # (name, index of the scope it is defined in)
    fields: tuple[tuple[str, int], ...]  # (field, index of its class scope; outside a class, of its scope)
    free: tuple[str, ...]  # names read in the file and defined in no scope but the outermost


def _text(node) -> str:
    return node.text.decode("utf-8", "replace").lstrip(_SIGILS)


def _own_names(scope_nodes: list) -> dict[int, object]:
    """Each scope node's own names (the nodes reached from it through ``_NAME_FIELDS`` only, not
    through another scope), by node id: the scope node they name. Walked down from the scopes,
    as asking a node's parent for its fields scans all of a file's top-level statements."""
    scopes = {n.id for n in scope_nodes}
    own: dict[int, object] = {}
    todo = [(n, n) for n in scope_nodes]
    while todo:
        node, scope = todo.pop()
        for field in _NAME_FIELDS:
            for child in node.children_by_field_name(field):
                if child.id not in scopes:
                    own[child.id] = scope
                    todo.append((child, scope))
    return own


def _owner(node, index: dict[int, int], own: dict[int, object]) -> int:
    """The scope a definition belongs to: the innermost scope node around it (for a function's
    or class's own name, the one around that definition)."""
    parent = own.get(node.id, node).parent
    while parent is not None and parent.id not in index:
        parent = parent.parent
    return index[parent.id] if parent is not None else -1


def _class_of(node, index: dict[int, int], own: dict[int, object]) -> int:
    """The scope a field belongs to: the nearest class around it (a ``self.x`` in a method is
    the class's), or else the innermost scope (a Go or C struct's fields are its file's)."""
    up = node.parent
    while up is not None and not (up.type in _CLASS_TYPES and up.id in index):
        up = up.parent
    return index[up.id] if up is not None else _owner(node, index, own)


def _captures(doc: Document, query, around: tuple[int, int] | None) -> dict[str, list]:
    """The query's captures at the top of the file (module-level definitions, imports) and
    everywhere inside the top-level statement ``around`` (byte range): the rest of a long file
    cannot be in scope but through its top level, and querying all of it would cost more."""
    from tree_sitter import QueryCursor

    top = QueryCursor(query)
    top.set_max_start_depth(TOP_DEPTH)
    found = top.captures(doc.tree.root_node, predicate=kind_predicate)
    if around is not None:
        inner = QueryCursor(query)
        inner.set_byte_range(*around)
        seen = {n.id for nodes in found.values() for n in nodes}
        for name, nodes in inner.captures(doc.tree.root_node, predicate=kind_predicate).items():
            found.setdefault(name, []).extend(n for n in nodes if n.id not in seen)
    return found


@functools.lru_cache(maxsize=8)  # the language server asks once per request, of the same snapshot
def _scopes(doc: Document, around: tuple[int, int] | None) -> _Scopes | None:
    query = _query(doc.grammar.name)
    if query is None:
        return None
    captures = _captures(doc, query, around)
    scope_nodes = sorted(captures.get("local.scope", []), key=lambda n: (n.start_byte, -n.end_byte))
    index = {n.id: i for i, n in enumerate(scope_nodes)}
    own = _own_names(scope_nodes)
    defined = [(_text(node), _owner(node, index, own)) for node in captures.get("local.definition", [])]
    fields = [(_text(node), _class_of(node, index, own)) for node in captures.get("local.definition.field", [])]
    inner = {name for name, scope in defined if scope > 0}
    free = sorted({_text(n) for n in captures.get("local.reference", [])} - inner)
    return _Scopes(tuple((n.start_byte, n.end_byte) for n in scope_nodes), tuple(defined), tuple(fields), tuple(free))


def _top_level(doc: Document, a: int, b: int) -> tuple[int, int] | None:
    """Byte range of the top-level statements the range [a, b) lies in."""
    kids = [k for k in doc.tree.root_node.children if k.start_byte <= b and k.end_byte >= a]
    return (kids[0].start_byte, kids[-1].end_byte) if kids else None


def names_at(doc: Document | None, start: int, end: int | None = None) -> tuple[str, ...]:
    """Names visible at the character range [start, end) of ``doc``, nearest scope first: its
    scopes' definitions, the fields of its class, then the file's free names. Empty when the
    language has no locals.scm."""
    if doc is None:
        return ()
    a = doc.offsets.byte(start)
    b = doc.offsets.byte(start if end is None else end)
    scopes = _scopes(doc, _top_level(doc, a, b))
    if scopes is None:
        return ()
    around = [i for i, (s, e) in enumerate(scopes.spans) if s <= a and b <= e]
    depth = {scope: d for d, scope in enumerate(reversed(around))}  # 0: the innermost
    found: dict[str, int] = {}
    for name, scope in scopes.defined:
        if scope in depth:
            found[name] = min(found.get(name, len(depth)), depth[scope])
    for name, scope in scopes.fields:
        if scope in depth:
            found.setdefault(name, depth[scope])
    for name in scopes.free:
        found.setdefault(name, len(depth))
    names = sorted((n for n in found if _NAME.fullmatch(n)), key=lambda n: (found[n], n))
    return tuple(names[:MAX_NAMES])
