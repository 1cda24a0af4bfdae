"""Ruby syntax regions (grammars/ruby/regions.scm) on real code with real tree-sitter: the named
regions, innermost-first order, monotone expansion, zero-width insides of empty brackets, CRLF
offsets and parse errors."""

import textwrap
from functools import partial

import pytest
from regions_support import assert_nested, at, between, crlf_copy, expansions
from regions_support import named as named_in

from dcoder import syntax

LANG = "ruby"
named = partial(named_in, language=LANG)

CODE = textwrap.dedent('''\
    # frozen_string_literal: true
    require "json"
    require_relative "lib/größe"

    # Inventory of labelled points.
    module Geometrie
      class Punkt < Base
        attr_reader :x, :größe

        def initialize(x, größe = 1, *rest, key:, **opts, &blk)
          @x = x
          @größe ||= größe
          @x += rest.size
        end

        def self.origin
          new(0, 0, key: :o)
        end

        def empty?() = @x.nil?

        def reset()
        end

        def describe
          return "leer ✓" if @x.zero?
          label = "Punkt #{@x}, Größe #{größe}"
          tags.each do |tag, (a, b)|
            puts tag unless a > b
          end
          doubled = tags.map { |t| t * 2 }
          scale = ->(v, w = 2) { v * w }
          check = lambda { |z| z.positive? }
          while @x > 100 && check.call(@x)
            @x -= scale.call(@x, 3)
          end
          kind = @x > 10 ? "groß" : "klein"
          text = <<~EOS
            #{label}: #{kind}
          EOS
          refresh()
          JSON.generate(text: text, tags: doubled)
        end

        def safe_größe
          begin
            Integer(@größe)
          rescue ArgumentError => e
            warn e.message
            0
          end
        end
      end
    end
''')

DESCRIBE = between(CODE, "def describe", "doubled)\n    end")
DESCRIBE_BODY = between(CODE, 'return "leer', "tags: doubled)")
CLASS_BODY = between(CODE, "attr_reader", "0\n      end\n    end")


def test_query_compiles_with_the_shared_vocabulary_only():
    g = syntax.grammar(LANG)
    assert g is not None and g.query is not None
    names = set(syntax.region_names(LANG))
    assert names <= syntax.CAPTURES
    # no decorators or comprehensions in Ruby; `#` doc comments are not docstrings
    assert names == syntax.CAPTURES - {"decorator", "comprehension", "docstring"}
    assert syntax.note(LANG) is None
    assert syntax.parse(CODE, LANG).has_error is False
    assert syntax.parse(CODE, LANG).problems() == []


@pytest.mark.parametrize("marker, name, expected", [
    # methods (`def`, `def self.`, endless) are functions; modules and classes are classes
    ("def describe", "function.outer", DESCRIBE),
    ("def describe", "statement", DESCRIBE),
    ("label =", "function.inner", DESCRIBE_BODY),
    ("label =", "block", DESCRIBE_BODY),
    ("origin", "function.outer", "def self.origin\n      new(0, 0, key: :o)\n    end"),
    ("key: :o", "function.inner", "new(0, 0, key: :o)"),
    ("empty?", "function.outer", "def empty?() = @x.nil?"),
    ("@x.nil?", "function.inner", "@x.nil?"),
    ("attr_reader", "class.inner", CLASS_BODY),
    ("attr_reader", "class.outer", between(CODE, "class Punkt", "0\n      end\n    end\n  end")),
    ("module", "class.outer", CODE[at(CODE, "module"):-1]),
    ("größe = 1", "parameters", "x, größe = 1, *rest, key:, **opts, &blk"),
    ("größe = 1", "parameter", "größe = 1"),
    ("*rest", "parameter", "*rest"),
    ("key:,", "parameter", "key:"),
    ("**opts", "parameter", "**opts"),
    ("&blk", "parameter", "&blk"),
    # blocks and lambdas
    ("tag, (a", "lambda", "do |tag, (a, b)|\n        puts tag unless a > b\n      end"),
    ("tag, (a", "parameters", "tag, (a, b)"),
    ("(a, b)", "parameter", "(a, b)"),
    ("puts tag", "block", "puts tag unless a > b"),
    ("t * 2", "lambda", "{ |t| t * 2 }"),
    ("t * 2", "block", "t * 2"),
    ("v, w", "lambda", "->(v, w = 2) { v * w }"),
    ("v, w", "parameters", "v, w = 2"),
    ("w = 2", "parameter", "w = 2"),
    ("v * w", "return.value", "v * w"),  # a lambda's last expression
    ("|z|", "lambda", "{ |z| z.positive? }"),
    ("lambda {", "lambda", "lambda { |z| z.positive? }"),
    ("z.positive?", "return.value", "z.positive?"),
    # conditions: modifiers, while, ternary
    ("@x.zero?", "condition", "@x.zero?"),
    ("a > b", "condition", "a > b"),
    ("&& check", "condition", "@x > 100 && check.call(@x)"),
    ("@x > 10 ", "condition", "@x > 10"),
    # returns: explicit, and the last expression of a method
    ("leer", "return.value", '"leer ✓"'),
    ('return "leer', "statement", 'return "leer ✓"'),
    ('if @x.zero?', "statement", 'return "leer ✓" if @x.zero?'),
    ("JSON", "return.value", "JSON.generate(text: text, tags: doubled)"),
    ("key: :o", "return.value", "new(0, 0, key: :o)"),
    ("@x.nil?", "return.value", "@x.nil?"),
    ("ArgumentError", "return.value", between(CODE, "begin\n", "0\n      end")),
    # assignments: =, ||=, +=, -=, a lambda, a ternary, a heredoc opener
    ("x\n      @größe", "assignment.rhs", "x"),
    ("größe\n      @x +=", "assignment.rhs", "größe"),
    ("rest.size", "assignment.rhs", "rest.size"),
    ("scale.call(@x, 3)", "assignment.rhs", "scale.call(@x, 3)"),
    ("->(", "assignment.rhs", "->(v, w = 2) { v * w }"),
    ("groß\"", "assignment.rhs", '@x > 10 ? "groß" : "klein"'),
    ("<<~EOS", "assignment.rhs", "<<~EOS"),
    # calls with and without parentheses, and with a block
    ("JSON", "call.outer", "JSON.generate(text: text, tags: doubled)"),
    ("text: text", "call.inner", "text: text, tags: doubled"),
    ("puts tag", "call.outer", "puts tag"),
    ("tag unless", "call.inner", "tag"),
    (":x, :größe", "call.inner", ":x, :größe"),
    ("tags.each", "call.outer", between(CODE, "tags.each", "a > b\n      end")),
    ("e.message", "call.outer", "e.message"),
    ("e.message", "call.inner", "e.message"),  # warn's; `e.message` itself has no arguments
    # strings: interpolation, non-ASCII, heredoc text
    ("Punkt #", "string", '"Punkt #{@x}, Größe #{größe}"'),
    ("klein", "string", '"klein"'),
    (": #{kind}", "string", between(CODE, "\n        #{label}", "      EOS")),
    # require and require_relative are imports as well as calls
    ('"json"', "import", 'require "json"'),
    ("require_relative", "import", 'require_relative "lib/größe"'),
    ("require_relative", "call.outer", 'require_relative "lib/größe"'),
    ("lib/", "string", '"lib/größe"'),
    # statements and keyword-delimited bodies
    ("@größe ||=", "statement", "@größe ||= größe"),
    ("while", "statement", between(CODE, "while", "3)\n      end")),
    ("@x -= scale", "block", "@x -= scale.call(@x, 3)"),
    ("Integer(", "block", "Integer(@größe)"),
    ("warn", "block", "warn e.message\n        0"),
    ("refresh", "statement", "refresh()"),
])
def test_region_vocabulary_on_real_code(marker, name, expected):
    assert named(CODE, marker, name) == expected


def test_regions_are_listed_innermost_first_through_a_lambda():
    pos = at(CODE, "v * w")
    found = syntax.regions_at(CODE, pos, LANG)
    assert_nested(found, pos)
    assert [r.name for r in found] == [
        "return.value", "statement", "block", "lambda", "assignment.rhs", "statement",
        "function.inner", "block", "function.outer", "statement",
        "class.inner", "block", "class.outer", "statement",  # class Punkt in module Geometrie
        "class.inner", "block", "class.outer", "statement",
    ]
    # a body is typed by its first statement: `v * w` is the lambda's only one
    assert [r.node_type for r in found[:6]] == ["binary", "binary", "binary", "lambda", "lambda", "assignment"]
    # `lambda { }`: the block, then the call that makes it a lambda, then that call
    around_z = [(r.name, CODE[r.start:r.end]) for r in syntax.regions_at(CODE, at(CODE, "z.positive?"), LANG)]
    assert around_z[3:7] == [("block", "z.positive?"), ("lambda", "{ |z| z.positive? }"),
                             ("lambda", "lambda { |z| z.positive? }"), ("call.outer", "lambda { |z| z.positive? }")]


@pytest.mark.parametrize("marker, first", [
    ("v * w", ["return.value", "lambda", "statement", "function.inner", "function.outer"]),
    ("größe = 1", ["parameter", "parameters", "function.outer", "class.inner", "class.outer"]),
    ("klein", ["string", "assignment.rhs", "statement", "function.inner", "function.outer"]),
    ("tag unless", ["call.inner", "call.outer", "statement", "lambda", "call.outer", "function.inner"]),
    ("ArgumentError", ["return.value", "function.outer", "class.inner"]),
])
def test_expand_is_monotone_up_to_the_module(marker, first):
    doc = syntax.parse(CODE, LANG)
    chain = expansions(doc, CODE, marker)
    assert [r.name for r in chain][: len(first)] == first
    assert chain[-1].name == "class.outer" and CODE[chain[-1].start:chain[-1].end] == CODE[at(CODE, "module"):-1]


def test_empty_parentheses_give_zero_width_insides_and_empty_bodies_none():
    for marker, name in (("reset()", "parameters"), ("empty?()", "parameters"), ("refresh()", "call.inner")):
        pos = at(CODE, marker, len(marker) - 1)  # between the parentheses
        r = syntax.region(CODE, pos, name, LANG)
        assert r is not None and (r.start, r.end) == (pos, pos), marker
    # a method with no parameters and an empty body: the whole method, nothing inside to fill
    pos = at(CODE, "reset()\n", len("reset()\n"))  # where its body would go
    assert [r.name for r in syntax.regions_at(CODE, pos, LANG)][:4] == [
        "function.outer", "statement", "class.inner", "block"]
    assert named(CODE, "reset()", "function.outer") == "def reset()\n    end"
    # `def describe` has no parameter list at all
    assert all(r.name != "parameters" for r in syntax.regions_at(CODE, at(CODE, "describe"), LANG))


def test_implicit_returns_and_their_exceptions():
    # `new` discards what initialize returns: its last statement is no return value
    assert all(r.name != "return.value" for r in syntax.regions_at(CODE, at(CODE, "rest.size"), LANG))
    text = textwrap.dedent('''\
        def name=(v)
          @name = v
        end
        def self.build(*args, &blk)
          new(*args)
          # built
        end
        def fail!
          raise ArgumentError, "nein"
        end
        def early
          return 1 if ok?
          2
        end
        def show a, b
          puts a, b
        end
        def []=(k, v)
          @h[k] = v
        end
    ''')
    assert syntax.parse(text, LANG).has_error is False
    assert all(r.name != "return.value" for r in syntax.regions_at(text, at(text, "@name = v"), LANG))
    assert all(r.name != "return.value" for r in syntax.regions_at(text, at(text, "raise"), LANG))
    assert all(r.name != "return.value" for r in syntax.regions_at(text, at(text, "@h[k]"), LANG))
    assert named(text, "new(", "return.value") == "new(*args)"  # a trailing comment aside
    assert named(text, "1 if", "return.value") == "1"
    assert named(text, "2\n", "return.value") == "2"
    # parameters without parentheses run from the first to the last
    assert named(text, "a, b\n  puts", "parameters") == "a, b"
    assert named(text, "a, b\nend", "call.inner") == "a, b"


def test_subjectless_case_whens_and_begin_bodies():
    text = textwrap.dedent('''\
        case
        when n > 0, n.nil? then :plus
        else
          :minus
        end
        case n
        when 1 then :eins
        end
        begin
          a = 1
          # note
          b = a
        ensure
          close
        end
        x = y rescue nil
        z += 1 until z > 9
    ''')
    assert syntax.parse(text, LANG).has_error is False
    assert named(text, "n > 0", "condition") == "n > 0"
    assert named(text, "n.nil?", "condition") == "n.nil?"
    assert all(r.name != "condition" for r in syntax.regions_at(text, at(text, "1 then"), LANG))  # `when 1` matches n
    assert named(text, ":plus", "block") == ":plus"
    assert named(text, ":minus", "block") == ":minus"
    assert named(text, "a = 1", "block") == "a = 1\n  # note\n  b = a"
    assert named(text, "close", "block") == "close"
    assert named(text, "rescue nil", "assignment.rhs") == "y rescue nil"
    assert named(text, "z > 9", "condition") == "z > 9"
    assert named(text, "z +=", "statement") == "z += 1"


def test_crlf_shifts_every_region_by_the_carriage_returns_before_it():
    crlf = crlf_copy(CODE, LANG, more_than=100)
    assert named(crlf, "v * w", "return.value") == "v * w"
    assert named(crlf, "größe = 1", "parameters") == "x, größe = 1, *rest, key:, **opts, &blk"
    assert named(crlf, "label =", "function.inner") == DESCRIBE_BODY.replace("\n", "\r\n")
    assert named(crlf, "warn", "block") == "warn e.message\r\n        0"


def test_broken_code_reports_errors_and_still_has_regions():
    text = "def ok(a)\n  a + 1\nend\n\ndef broken(x)\n  y = = 2\n  z = (x + 1\nend\n"
    doc = syntax.parse(text, LANG)
    assert doc.has_error
    problems = doc.problems()
    assert "MISSING )" in {p.kind for p in problems}  # the unclosed `(x + 1`
    assert all(at(text, "def broken") <= p.context[0] <= p.start <= p.end <= p.context[1] <= len(text)
               for p in problems)
    # the intact method keeps its regions
    assert named(text, "a + 1", "return.value") == "a + 1"
    assert named(text, "a)", "parameters") == "a"
    stray = "x = = 2\n"
    doc = syntax.parse(stray, LANG)
    assert doc.has_error and [(p.kind, stray[p.start:p.end]) for p in doc.problems()] == [("ERROR", "=")]
