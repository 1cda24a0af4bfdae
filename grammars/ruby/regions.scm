; Regions of Ruby code that dcoder can select, expand to and fill.
; Capture names are the stable vocabulary described in grammars/README.md.
; (#set! inside CAPTURE): that capture's region excludes its node's first and last child
; (parentheses, pipes), so an empty `f()` or `def f()` still has a fillable, zero-width inside.
; A #set! belongs inside its pattern's parentheses: at the top level it would start a new,
; empty pattern of its own.
; Where one range carries several names, the pattern written first is the inner one.
; Bodies have no braces: a body runs from its first statement to the end of its last (the
; keywords `then`, `else`, `do`, `end` stay out). An empty body has no node, so no inner region.
; Body patterns come last: a one-statement body's range is also that statement's, listed first.
; Not defined: decorator (Ruby has none: `private def f` is a call taking the method's name),
; comprehension (iteration is method calls with blocks) and docstring (a doc comment is a run
; of separate `#` comment nodes, each with its own marker).

; ---- definitions --------------------------------------------------------------

; `def f`, `def self.f`, endless `def f = expr`; their bodies are in the last section.
[
  (method)
  (singleton_method)
] @function.outer

; Modules and `class << self` hold what a class holds.
[
  (class)
  (module)
  (singleton_class)
] @class.outer

; `def f(a, b)` between its parentheses; `def f a, b` has none, so first to last parameter
; (the paren form gives the same range twice: one region).
((method_parameters "(") @parameters (#set! inside parameters))

(method_parameters
  .
  (_) @parameters
  (_)* @parameters
  .)

((lambda_parameters "(") @parameters (#set! inside parameters))

(lambda_parameters
  .
  (_) @parameters
  (_)* @parameters
  .)

; Between the pipes of `|a, b|`; block-local `|a; b|` names are listed there too.
((block_parameters) @parameters (#set! inside parameters))

(method_parameters
  [
    (identifier)
    (optional_parameter)
    (keyword_parameter)
    (splat_parameter)
    (hash_splat_parameter)
    (hash_splat_nil)
    (block_parameter)
    (forward_parameter)
    (destructured_parameter)
  ] @parameter)

(lambda_parameters
  [
    (identifier)
    (optional_parameter)
    (keyword_parameter)
    (splat_parameter)
    (hash_splat_parameter)
    (block_parameter)
    (destructured_parameter)
  ] @parameter)

(block_parameters
  [
    (identifier)
    (optional_parameter)
    (keyword_parameter)
    (splat_parameter)
    (hash_splat_parameter)
    (block_parameter)
    (destructured_parameter)
  ] @parameter)

; `->(x) { }`, and `lambda { }` / `proc { }`: Kernel calls that turn their block into one.
(lambda) @lambda

((call
  !receiver
  method: (identifier)
  block: (_)) @lambda
  (#match? @lambda "^(lambda|proc)\\b"))

; A block given to a call (`do |x| ... end`, `{ |x| ... }`) is an anonymous function too.
(call
  block: [(block) (do_block)] @lambda)

; ---- returns ----------------------------------------------------------------------

; `return a, b` is one argument_list: one region over every value.
(return
  (argument_list) @return.value)

; A method returns its last expression (comments after it aside); idiomatic Ruby writes no
; `return` there. Not for `initialize` and setters, `[]=` included (`new` and `x.y = v`
; discard the value), not a `return`/`raise`, not a body ending in rescue/ensure clauses or
; a heredoc's text.
((method
  name: [(identifier) (operator)]
  body: (body_statement
    (_statement) @return.value
    .
    (comment)*
    .)) @function.outer
  (#not-match? @function.outer "^def\\s+(initialize\\b|\\[\\]=)")
  (#not-match? @return.value "^(return|raise)\\b"))

((singleton_method
  name: [(identifier) (operator)]
  body: (body_statement
    (_statement) @return.value
    .
    (comment)*
    .))
  (#not-match? @return.value "^(return|raise)\\b"))

; Endless `def f = expr`: the expression is the value.
(method
  "="
  body: (_) @return.value)

(singleton_method
  "="
  body: (_) @return.value)

; A lambda's last expression is its value too; a plain block's goes back to `yield`, not to
; a caller, so it is not a return value.
((lambda
  body: (block
    body: (block_body
      (_statement) @return.value
      .
      (comment)*
      .)))
  (#not-match? @return.value "^(return|raise)\\b"))

((lambda
  body: (do_block
    body: (body_statement
      (_statement) @return.value
      .
      (comment)*
      .)))
  (#not-match? @return.value "^(return|raise)\\b"))

((call
  !receiver
  method: (identifier)
  block: (block
    body: (block_body
      (_statement) @return.value
      .
      (comment)*
      .))) @lambda
  (#match? @lambda "^(lambda|proc)\\b")
  (#not-match? @return.value "^(return|raise)\\b"))

((call
  !receiver
  method: (identifier)
  block: (do_block
    body: (body_statement
      (_statement) @return.value
      .
      (comment)*
      .))) @lambda
  (#match? @lambda "^(lambda|proc)\\b")
  (#not-match? @return.value "^(return|raise)\\b"))

; ---- strings --------------------------------------------------------------------------

; Quotes and interpolation included; `"a" "b"` is also one region as a whole. A heredoc's
; text lies apart from its `<<~EOS` opener: its region is that text through the terminator.
; Symbols, regexps, `%w[]` arrays and backtick commands are not string literals here.
(string) @string

(chained_string) @string

(heredoc_body) @string

; ---- expressions ----------------------------------------------------------------

; require and require_relative are method calls, but they are how Ruby loads other files:
; imports as well as calls, wherever they appear.
((call
  !receiver
  method: (identifier)
  arguments: (argument_list)) @import
  (#match? @import "^require(_relative)?\\b"))

; Every method call: `f()`, `puts x`, `a.b`, `a&.b(1)`, `super(x)`, with any block it takes.
(call) @call.outer

(yield) @call.outer

; Only where there is an argument list. Between the parentheses (empty `f()`: zero-width) ...
(call
  arguments: (argument_list "(") @call.inner (#set! inside call.inner))

(yield
  (argument_list "(") @call.inner (#set! inside call.inner))

; ... or first to last argument of `puts a, b` and of `f (x)` (one parenthesised argument).
(call
  arguments: (argument_list
    .
    (_) @call.inner
    (_)* @call.inner
    .))

(yield
  (argument_list
    .
    (_) @call.inner
    (_)* @call.inner
    .))

; Statement and modifier forms (`x if cond`), loops, the ternary, pattern-match guards.
(if
  condition: (_) @condition)

(unless
  condition: (_) @condition)

(elsif
  condition: (_) @condition)

(while
  condition: (_) @condition)

(until
  condition: (_) @condition)

(if_modifier
  condition: (_) @condition)

(unless_modifier
  condition: (_) @condition)

(while_modifier
  condition: (_) @condition)

(until_modifier
  condition: (_) @condition)

(conditional
  condition: (_) @condition)

(if_guard
  condition: (_) @condition)

(unless_guard
  condition: (_) @condition)

; A subject-less `case` is an if-elsif chain: its `when` values are tests.
(case
  !value
  (when
    pattern: (_) @condition))

; `=`, `a, b = 1, 2` (one region over the list), and `||=`, `+=`...
(assignment
  right: (_) @assignment.rhs)

(operator_assignment
  right: (_) @assignment.rhs)

; ---- statements -------------------------------------------------------------------

; Any statement in a body (a heredoc's text and comments are not); the body of a modifier
; form (`return x if y`) is one too.
(program
  (_statement) @statement)

(body_statement
  (_statement) @statement)

(block_body
  (_statement) @statement)

(then
  (_statement) @statement)

(else
  (_statement) @statement)

(do
  (_statement) @statement)

(begin
  (_statement) @statement)

(ensure
  (_statement) @statement)

(if_modifier
  body: (_) @statement)

(unless_modifier
  body: (_) @statement)

(while_modifier
  body: (_) @statement)

(until_modifier
  body: (_) @statement)

; ---- bodies -----------------------------------------------------------------------

; A body_statement or block_body node reaches over the `\r` of a CRLF line end: every body
; runs from its first child to its last one instead (comments and a heredoc's text included).
(method
  body: (body_statement
    .
    (_) @function.inner
    (_)* @function.inner
    .))

(singleton_method
  body: (body_statement
    .
    (_) @function.inner
    (_)* @function.inner
    .))

; Endless `def f = expr`: the expression is the body.
(method
  "="
  body: (_) @function.inner)

(singleton_method
  "="
  body: (_) @function.inner)

(class
  body: (body_statement
    .
    (_) @class.inner
    (_)* @class.inner
    .))

(module
  body: (body_statement
    .
    (_) @class.inner
    (_)* @class.inner
    .))

(singleton_class
  body: (body_statement
    .
    (_) @class.inner
    (_)* @class.inner
    .))

; Bodies of definitions and of `do ... end` / `{ ... }` blocks.
(body_statement
  .
  (_) @block
  (_)* @block
  .)

(block_body
  .
  (_) @block
  (_)* @block
  .)

; `then`, `else`, `ensure` and `do` nodes hold their keyword too.
(then
  .
  (_) @block
  (_)* @block
  .)

(else
  .
  (_) @block
  (_)* @block
  .)

(ensure
  .
  (_) @block
  (_)* @block
  .)

(do
  .
  (_) @block
  (_)* @block
  .)

; `begin`'s own statements sit beside its rescue/else/ensure clauses: up to the first one.
(begin
  .
  (_statement) @block
  [(_statement) (comment)]* @block
  .
  [(rescue) (else) (ensure) "end"])
