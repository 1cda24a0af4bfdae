; Regions of Rust code that dcoder can select, expand to and fill.
; Capture names are the stable vocabulary described in grammars/README.md.
; (#set! inside CAPTURE): that capture's region excludes its node's first and last child
; (braces, parentheses, bars), so an empty `f()` or `{}` still has a fillable, zero-width inside.
; A #set! belongs inside its pattern's parentheses: at the top level it would start a new,
; empty pattern of its own.
; Where one range carries several names, the pattern written first is the inner one.
; No docstring: a `///` doc is one line_comment per line, each doc_comment keeping its leading
; blank and newline, so there is no clean "text without its quotes" to fill.
; No comprehension: Rust has none (iterator chains are method calls).

; ---- definitions --------------------------------------------------------------

; Methods (in impl and trait blocks) are function_items too.
(function_item
  body: (block) @function.inner (#set! inside function.inner)) @function.outer

; A trait's or an extern block's bodiless `fn f(..);` is still a whole function.
(function_signature_item) @function.outer

; With its attributes: they are siblings, not parents. `+` takes the whole unbroken run; doc and
; other comments may sit between it and the item.
((attribute_item)+ @function.outer
  .
  [(line_comment) (block_comment)]*
  .
  [(function_item) (function_signature_item)] @function.outer)

; Structs, enums, unions, traits and impls all hold what a class holds.
(struct_item
  body: (field_declaration_list) @class.inner (#set! inside class.inner)) @class.outer

; Tuple struct `struct P(i32, i32);`: its fields between the parentheses.
(struct_item
  body: (ordered_field_declaration_list) @class.inner (#set! inside class.inner)) @class.outer

; Unit struct `struct U;`: no body.
(struct_item) @class.outer

(union_item
  body: (field_declaration_list) @class.inner (#set! inside class.inner)) @class.outer

(enum_item
  body: (enum_variant_list) @class.inner (#set! inside class.inner)) @class.outer

(trait_item
  body: (declaration_list) @class.inner (#set! inside class.inner)) @class.outer

(impl_item
  body: (declaration_list) @class.inner (#set! inside class.inner)) @class.outer

((attribute_item)+ @class.outer
  .
  [(line_comment) (block_comment)]*
  .
  [(struct_item) (union_item) (enum_item) (trait_item) (impl_item)] @class.outer)

; `#[derive(..)]` and the crate- or module-wide `#![allow(..)]`.
[
  (attribute_item)
  (inner_attribute_item)
] @decorator

((parameters) @parameters (#set! inside parameters))

; Between the bars; an empty `||` gives a zero-width region.
((closure_parameters) @parameters (#set! inside parameters))

; `(_type)`: the unnamed parameters of a `fn(i32, u8)` type.
(parameters
  [
    (parameter)
    (self_parameter)
    (variadic_parameter)
    (_type)
  ] @parameter)

(closure_parameters
  [
    (parameter)
    (_pattern)
  ] @parameter)

(closure_expression) @lambda

; ---- expressions ----------------------------------------------------------------

(string_literal) @string

(raw_string_literal) @string

(call_expression) @call.outer

(call_expression
  arguments: (arguments) @call.inner (#set! inside call.inner))

; Macro invocations (`println!(..)`, `vec![..]`) read and get edited like calls.
(macro_invocation) @call.outer

(macro_invocation
  (token_tree) @call.inner (#set! inside call.inner))

; `if let` / let chains: the whole `let Some(x) = y && ..` is the test.
(if_expression
  condition: (_) @condition)

(while_expression
  condition: (_) @condition)

; A match arm's guard: `Some(x) if x > 0 => ..`.
(match_pattern
  condition: (_) @condition)

(return_expression
  (_) @return.value)

; Implicit return: the final expression (no `;`) of a function with a declared `-> T`, or of a
; closure's block, is its value. A function without `-> T` returns (): its tail is no value, nor
; are jumps, assignments and for / while loops, which always give (). The list of value kinds is
; written twice: a query cannot name a set of node types once and reuse it.
(function_item
  return_type: (_)
  body: (block
    [
      (_literal)
      (array_expression)
      (await_expression)
      (binary_expression)
      (call_expression)
      (closure_expression)
      (field_expression)
      (generic_function)
      (identifier)
      (index_expression)
      (macro_invocation)
      (parenthesized_expression)
      (range_expression)
      (reference_expression)
      (scoped_identifier)
      (self)
      (struct_expression)
      (try_expression)
      (tuple_expression)
      (type_cast_expression)
      (unary_expression)
      (unit_expression)
    ] @return.value
    .))

(closure_expression
  body: (block
    [
      (_literal)
      (array_expression)
      (await_expression)
      (binary_expression)
      (call_expression)
      (closure_expression)
      (field_expression)
      (generic_function)
      (identifier)
      (index_expression)
      (macro_invocation)
      (parenthesized_expression)
      (range_expression)
      (reference_expression)
      (scoped_identifier)
      (self)
      (struct_expression)
      (try_expression)
      (tuple_expression)
      (type_cast_expression)
      (unary_expression)
      (unit_expression)
    ] @return.value
    .))

; The grammar wraps a block-like tail (`if`, `match`, `loop`, `unsafe { }`..) in an
; expression_statement even without `;`; a `;` after it would leave an empty_statement last.
(function_item
  return_type: (_)
  body: (block
    (expression_statement
      [
        (if_expression)
        (match_expression)
        (loop_expression)
        (block)
        (unsafe_block)
        (async_block)
        (const_block)
        (try_block)
        (gen_block)
      ] @return.value)
    .))

(closure_expression
  body: (block
    (expression_statement
      [
        (if_expression)
        (match_expression)
        (loop_expression)
        (block)
        (unsafe_block)
        (async_block)
        (const_block)
        (try_block)
        (gen_block)
      ] @return.value)
    .))

(let_declaration
  value: (_) @assignment.rhs)

(assignment_expression
  right: (_) @assignment.rhs)

(compound_assignment_expr
  right: (_) @assignment.rhs)

(const_item
  value: (_) @assignment.rhs)

(static_item
  value: (_) @assignment.rhs)

; ---- statements -------------------------------------------------------------------

[
  (use_declaration)
  (extern_crate_declaration)
] @import

; Items are statements, at the top level, in modules and impls as well as in blocks.
[
  (let_declaration)
  (expression_statement)
  (use_declaration)
  (extern_crate_declaration)
  (function_item)
  (function_signature_item)
  (struct_item)
  (union_item)
  (enum_item)
  (trait_item)
  (impl_item)
  (mod_item)
  (foreign_mod_item)
  (const_item)
  (static_item)
  (type_item)
  (associated_type)
  (macro_definition)
] @statement

; An item-level macro (`thread_local! { .. }`) is not wrapped in an expression_statement.
(source_file
  (macro_invocation) @statement)

(declaration_list
  (macro_invocation) @statement)

; A block's final expression (no `;`) is a statement when it does something (a jump, an
; assignment, a call); a plain value such as the `1` of `{ 1 }` is not. Block-like tails (`if`,
; `for`, `match`..) are expression_statements already.
(block
  [
    (return_expression)
    (break_expression)
    (continue_expression)
    (yield_expression)
    (assignment_expression)
    (compound_assignment_expr)
    (call_expression)
    (macro_invocation)
    (await_expression)
    (try_expression)
  ] @statement
  .)

; `. "{"`: a labeled block `'a: { .. }` starts with its label, which `inside` would cut instead.
((block . "{") @block (#set! inside block))

; A labeled block: from its first statement to the end of its last.
(block
  (label)
  .
  (_) @block
  (_)* @block
  .)

; Bodies of impls, traits, modules and extern blocks hold items, i.e. statements.
((declaration_list) @block (#set! inside block))

((match_block) @block (#set! inside block))
