"""Names in scope beyond Python (grammars/<language>/locals.scm through dcoder.syntax.scope): for
each language, real code and a hole in a function body, the names visible there (parameters,
locals defined before, fields and members, the file's functions and types) and the locals of
another function not among them; every locals.scm compiles for its grammar, and `; inherits:`
works for locals.scm as for regions.scm."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcoder import syntax
from dcoder.errors import DcoderError
from dcoder.syntax import languages, scope
from dcoder.syntax.languages import compile_query, grammar, query_files
from dcoder.syntax.scope import LOCALS_FILE, names_at

pytest.importorskip("tree_sitter_language_pack")

GRAMMARS = Path(languages.__file__).parents[2] / "grammars"

TYPESCRIPT = """import { readFile as read } from "fs";
import * as path from "path";
const LIMIT: number = 3;
interface Entry { key: string; value: number }
type Key = string;
enum Color { Red, Green }
class Cache<T> {
  private store: Map<string, T> = new Map();
  constructor(private size: number, public readonly label?: string, ...items: T[]) {
    this.count = 0;
  }
  put(key: Key, { value }: Entry, flag = false): void {
    let total = this.store.size;
    const bump = (x: number) => x + 1;
    for (const [k, v] of this.store) { }
    HOLE;
  }
}
function helper(unrelated: string): void { const hidden = 1; }
"""

GO = """package main

import (
	"fmt"
	str "strings"
)

const Limit = 3

type Cache struct {
	size  int
	items map[string]int
}

type Store interface {
	Get(key string) int
}

func helper(unrelated int) {
	hidden := 1
	_ = hidden
}

func (c *Cache) Put(key string, value int) (ok bool, err error) {
	total := len(c.items)
	var scale, offset = 2, 1
	for index, item := range c.items {
		fmt.Println(index, item)
	}
	if n := total; n > 0 {
	}
	bump := func(x int) int { return x }
	HOLE
	return str.HasPrefix(key, "a"), nil
}
"""

RUST = """use std::collections::HashMap;
use std::io::{self, Read as R};

const LIMIT: usize = 3;

struct Cache {
    size: usize,
    items: HashMap<String, i32>,
}

enum Shape { Circle(f64), Square }

trait Store { fn get(&self, key: &str) -> i32; }

fn helper(unrelated: i32) -> i32 {
    let hidden = 1;
    hidden
}

impl Cache {
    fn put(&mut self, key: String, (a, b): (i32, i32)) -> usize {
        let total = self.items.len();
        let Point { px, py: renamed } = origin();
        for (index, item) in self.items.iter() {}
        if let Some(found) = self.items.get(&key) {}
        let add = |n: i32, m| n + m;
        HOLE;
        total
    }
}
"""

JAVA = """package demo;

import java.util.HashMap;

public class Cache<T> {
    private static final int LIMIT = 3;
    private int size, capacity;
    private final HashMap<String, T> items = new HashMap<>();

    public Cache(int size) {
        this.size = size;
        this.loaded = true;
    }

    static int helper(int unrelated) {
        int hidden = 1;
        return hidden;
    }

    public int put(String key, T value, int... rest) {
        int total = items.size();
        for (int i = 0; i < total; i++) {}
        try { total += 1; } catch (RuntimeException err) {}
        java.util.function.Function<Integer, Integer> bump = x -> x + 1;
        HOLE;
        return total;
    }
}

interface Store { int get(String name); }
"""

C = """#include <stdio.h>
#define LIMIT 3

static int counter = 0;

struct cache {
    int size;
    char *name;
};

typedef struct { int x, y; } point;

int lookup(const char *needle, int n);

int helper(int unrelated) {
    int hidden = 1;
    return hidden;
}

static char *put(struct cache *c, const char *key, int values[], int count) {
    int total = c->size;
    char *buf = NULL, tmp;
    for (int i = 0; i < count; i++) {
        int doubled = values[i] * 2;
    }
    HOLE;
    return buf;
}
"""

CPP = """#include <vector>
#include <string>
using std::string;

class Cache {
public:
    Cache(int capacity) : size_(capacity) {}
    int put(const string &key, std::vector<int> &values, int count = 0);
    int get(int k) const { return size_ + k; }
private:
    int size_;
    std::vector<string> names_;
};

namespace util {
int helper(int unrelated) {
    int hidden = 1;
    return hidden;
}
}

int Cache::put(const string &key, std::vector<int> &values, int count) {
    int total = size_;
    auto scale = [total](int x) { return x * total; };
    HOLE;
    return total;
}
"""

RUBY = """require "set"

LIMIT = 3

class Cache
  attr_reader :capacity

  def initialize(size, *items, name: nil, **opts, &blk)
    @size = size
    @@count = 0
  end

  def put(key, value = nil)
    total = @size + LIMIT
    a, b = 1, 2
    value.each { |item, index| puts item }
    fn = ->(x) { x + 1 }
    HOLE
    total
  end
end

def helper(unrelated)
  hidden = 1
  hidden
end
"""

# language, source, names at HOLE (locals, parameters, fields and members, the file's names),
# names that must not be there (other functions' and inner scopes' locals), one before the other
CASES = {
    "typescript": (TYPESCRIPT,
                   {"total", "bump", "key", "value", "flag", "store", "size", "label", "count", "put", "T",
                    "Cache", "Entry", "Key", "Color", "LIMIT", "helper", "read", "path", "Map"},
                   {"unrelated", "hidden", "items", "x", "k", "v"}, ("total", "store", "Entry")),
    "go": (GO,
           {"total", "scale", "offset", "bump", "c", "key", "value", "ok", "err", "size", "items", "Get",
            "Cache", "Store", "Limit", "helper", "Put", "str", "fmt", "len"},
           {"unrelated", "hidden", "index", "item", "n", "x"}, ("total", "key", "Cache")),
    "rust": (RUST,
             {"total", "px", "renamed", "add", "self", "key", "a", "b", "size", "items", "Circle", "Square",
              "Cache", "Shape", "Store", "get", "put", "helper", "LIMIT", "HashMap", "R"},
             {"unrelated", "hidden", "index", "item", "found", "n", "m"}, ("total", "key", "Cache")),
    "java": (JAVA,
             {"total", "bump", "key", "value", "rest", "size", "capacity", "items", "loaded", "LIMIT", "put",
              "helper", "T", "Cache", "Store", "HashMap"},
             {"unrelated", "hidden", "i", "err", "x", "name"}, ("total", "key", "size", "Store")),
    "c": (C,
          {"total", "buf", "tmp", "c", "key", "values", "count", "size", "name", "x", "y", "cache", "point",
           "lookup", "helper", "put", "counter", "LIMIT"},
          {"unrelated", "hidden", "i", "doubled", "needle", "n"}, ("total", "key", "counter")),
    "cpp": (CPP,
            {"total", "scale", "key", "values", "count", "size_", "names_", "get", "put", "Cache", "util",
             "string"},
            {"unrelated", "hidden", "x", "k", "capacity"}, ("total", "key", "Cache")),
    "ruby": (RUBY,
             {"total", "a", "b", "fn", "key", "value", "size", "count", "capacity", "initialize", "put", "Cache",
              "LIMIT", "helper", "puts"},
             {"unrelated", "hidden", "items", "name", "opts", "blk", "item", "index", "x"},
             ("total", "size", "Cache")),
}


@pytest.mark.parametrize("language", sorted(CASES))
def test_names_in_scope_at_a_hole(language):
    source, visible, hidden, order = CASES[language]
    names = names_at(syntax.parse(source, language), source.index("HOLE"))
    assert visible <= set(names), sorted(visible - set(names))
    assert not hidden & set(names), sorted(hidden & set(names))
    assert [names.index(n) for n in order] == sorted(names.index(n) for n in order)  # nearest scope first


def test_tsx_shares_the_typescript_query():
    names = names_at(syntax.parse(TYPESCRIPT, "tsx"), TYPESCRIPT.index("HOLE"))
    assert {"total", "size", "Entry", "read"} <= set(names) and "unrelated" not in names


def test_a_javascript_arrow_parameter_stays_in_its_function():
    source = "function f(items) {\n  items.map(x => x + 1);\n  for (const k of items) {}\n  HOLE\n}\n"
    names = names_at(syntax.parse(source, "javascript"), source.index("HOLE"))
    assert "items" in names and not {"x", "k"} & set(names)


def locals_files() -> list[str]:
    return sorted(p.parent.name for p in GRAMMARS.glob(f"*/{LOCALS_FILE}"))


def test_every_language_with_a_grammar_folder_has_names_in_scope():
    assert set(locals_files()) == {"c", "cpp", "go", "java", "javascript", "python", "ruby", "rust", "typescript"}


@pytest.mark.parametrize("language", [*locals_files(), "tsx"])
def test_every_locals_scm_compiles_for_its_grammar(language):
    query = compile_query(grammar(language).language, query_files(language, LOCALS_FILE), scope.CAPTURES)
    names = {query.capture_name(i) for i in range(query.capture_count)}
    assert {"local.scope", "local.definition", "local.reference"} <= names


@pytest.fixture()
def grammars(tmp_path, monkeypatch):
    """write(language, text): a locals.scm in a folder that replaces grammars/."""
    monkeypatch.setattr(languages, "GRAMMAR_DIRS", (tmp_path,))
    caches = (syntax.grammar, scope._query, scope._scopes)
    for cache in caches:
        cache.cache_clear()

    def write(language: str, text: str) -> None:
        (tmp_path / language).mkdir(exist_ok=True)
        (tmp_path / language / LOCALS_FILE).write_text(text, encoding="utf-8")

    yield write
    for cache in caches:
        cache.cache_clear()


GO_SOURCE = "package p\nfunc f(a int) {\n\tHOLE\n}\n"


def go_names() -> tuple[str, ...]:
    return names_at(syntax.parse(GO_SOURCE, "go"), GO_SOURCE.index("HOLE"))


@pytest.mark.parametrize("text, error", [
    ("(source_file) @local.scope\n(parameter_declaration name: (identifer) @local.definition)\n",
     r"go/locals.scm: Invalid node type .*identifer"),
    ("(source_file) @local.scope\n(identifier) @local.refrence\n", r"go/locals.scm: unknown capture name\(s\) local.refrence"),
    ("(source_file) @local.scope\n((identifier) @local.reference (#kind-of? @local.reference x))\n",
     r"go/locals.scm: unknown predicate\(s\) #kind-of\?"),
])
def test_a_wrong_locals_scm_is_one_clear_error(grammars, text, error):
    grammars("go", text)
    with pytest.raises(DcoderError, match=error):
        go_names()


def test_locals_scm_inherits_the_parents_locals_scm(grammars):
    grammars("c", "(parameter_declaration name: (identifier) @local.definition)\n")  # compiled with Go's grammar
    grammars("go", "; inherits: c\n(source_file) @local.scope\n(function_declaration) @local.scope\n")
    assert [p.parent.name for p in query_files("go", LOCALS_FILE)] == ["c", "go"]
    assert go_names() == ("a",)


def test_locals_scm_cannot_inherit_a_language_without_one(grammars):
    grammars("go", "; inherits: rust\n(source_file) @local.scope\n")
    with pytest.raises(DcoderError, match=r"go/locals.scm: inherits 'rust', which has no grammars/rust/locals.scm$"):
        go_names()
