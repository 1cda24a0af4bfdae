; Regions of Go code that dcoder can select, expand to and fill.
; Capture names are the stable vocabulary described in grammars/README.md.
; (#set! inside CAPTURE): that capture's region excludes its node's first and last child
; (braces, parentheses), so an empty `f()` or `{}` still has a fillable, zero-width inside.
; A #set! belongs inside its pattern's parentheses: at the top level it would start a new,
; empty pattern of its own.
; Where one range carries several names, the pattern written first is the inner one.
; Not defined: decorator and comprehension (Go has neither); docstring, because a Go doc
; comment is a run of separate `//` comment nodes whose required adjacency to the declaration
; (no blank line) a query cannot see, and whose `//` markers sit on every line.

; ---- definitions --------------------------------------------------------------

; Methods are functions too. A body-less declaration (assembly stub) has no inner.
(function_declaration
  body: (block) @function.inner (#set! inside function.inner)) @function.outer

(method_declaration
  body: (block) @function.inner (#set! inside function.inner)) @function.outer

; `type P struct {...}` is the class; in a grouped `type ( ... )` only its own spec is,
; not the whole group.
((type_declaration
  (type_spec
    type: [(struct_type) (interface_type)])) @class.outer
  (#not-match? @class.outer "^type\\s*[(]"))

(type_declaration
  "("
  (type_spec
    type: [(struct_type) (interface_type)]) @class.outer)

(type_spec
  type: (struct_type
    (field_declaration_list) @class.inner (#set! inside class.inner)))

; An interface's braces are its own children after the `interface` keyword, so `inside`
; cannot trim them: its inner runs from the first to the last element (none when empty).
(type_spec
  type: (interface_type
    .
    (_) @class.inner
    _* @class.inner
    .
    "}"))

; The parameter list proper: a method's receiver and a result list are left out.
(function_declaration
  parameters: (parameter_list) @parameters (#set! inside parameters))

(method_declaration
  parameters: (parameter_list) @parameters (#set! inside parameters))

(func_literal
  parameters: (parameter_list) @parameters (#set! inside parameters))

(method_elem
  parameters: (parameter_list) @parameters (#set! inside parameters))

; `a, b int` is one declaration in Go's grammar, so one parameter region.
(function_declaration
  parameters: (parameter_list
    [(parameter_declaration) (variadic_parameter_declaration)] @parameter))

(method_declaration
  parameters: (parameter_list
    [(parameter_declaration) (variadic_parameter_declaration)] @parameter))

(func_literal
  parameters: (parameter_list
    [(parameter_declaration) (variadic_parameter_declaration)] @parameter))

(method_elem
  parameters: (parameter_list
    [(parameter_declaration) (variadic_parameter_declaration)] @parameter))

; A func literal is Go's lambda; its body is a plain block.
(func_literal) @lambda

[
  (interpreted_string_literal)
  (raw_string_literal)
] @string

; ---- expressions ----------------------------------------------------------------

(call_expression) @call.outer

(call_expression
  arguments: (argument_list) @call.inner (#set! inside call.inner))

(if_statement
  condition: (_) @condition)

(for_clause
  condition: (_) @condition)

; `for x > 0 {`: the bare condition has no field name.
(for_statement
  (_expression) @condition)

; A tagless `switch { case x > 0: }` is an if-else chain: its case values are tests.
(expression_switch_statement
  !value
  (expression_case
    value: (_) @condition))

; `return a, b` is one expression_list: the region covers every returned value.
(return_statement
  (expression_list) @return.value)

(assignment_statement
  right: (_) @assignment.rhs)

(short_var_declaration
  right: (_) @assignment.rhs)

(var_spec
  value: (_) @assignment.rhs)

(const_spec
  value: (_) @assignment.rhs)

(receive_statement
  right: (_) @assignment.rhs)

; ---- statements -------------------------------------------------------------------

; Single `import "x"` and grouped `import ( ... )` alike: the whole declaration.
(import_declaration) @import

; Simple statements in an if/for/switch header (`v := f()`, `i++`) are statements too.
[
  (expression_statement)
  (send_statement)
  (receive_statement)
  (inc_statement)
  (dec_statement)
  (assignment_statement)
  (short_var_declaration)
  (labeled_statement)
  (fallthrough_statement)
  (break_statement)
  (continue_statement)
  (goto_statement)
  (return_statement)
  (go_statement)
  (defer_statement)
  (if_statement)
  (for_statement)
  (expression_switch_statement)
  (type_switch_statement)
  (select_statement)
  (var_declaration)
  (const_declaration)
  (type_declaration)
  (import_declaration)
  (function_declaration)
  (method_declaration)
] @statement

; A bare `{ ... }` is a statement; a body block is not.
(statement_list
  (block) @statement)

((block) @block (#set! inside block))

; A case body has no braces: it runs from its first statement to its last (`;` between
; them included: `_*`, not `(_)+`, which stops at one).
(expression_case
  (statement_list
    .
    (_) @block
    _* @block
    .))

(default_case
  (statement_list
    .
    (_) @block
    _* @block
    .))

(type_case
  (statement_list
    .
    (_) @block
    _* @block
    .))

(communication_case
  (statement_list
    .
    (_) @block
    _* @block
    .))
