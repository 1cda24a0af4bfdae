; Regions of Python code that dcoder can select, expand to and fill.
; Capture names are the stable vocabulary described in grammars/README.md.
; (#set! inside CAPTURE): that capture's region excludes its node's first and last child
; (brackets or quotes), so an empty `f()` still has a fillable, zero-width inside.
; A #set! belongs inside its pattern's parentheses: at the top level it would start a new,
; empty pattern of its own.
; Where one range carries several names, the pattern written first is the inner one.

; ---- definitions --------------------------------------------------------------

(function_definition
  body: (block) @function.inner) @function.outer

(decorated_definition
  definition: (function_definition)) @function.outer

(class_definition
  body: (block) @class.inner) @class.outer

(decorated_definition
  definition: (class_definition)) @class.outer

(decorator) @decorator

((parameters) @parameters (#set! inside parameters))

(lambda_parameters) @parameters

(parameters
  [
    (identifier)
    (typed_parameter)
    (default_parameter)
    (typed_default_parameter)
    (list_splat_pattern)
    (dictionary_splat_pattern)
    (keyword_separator)
    (positional_separator)
  ] @parameter)

(lambda_parameters
  [
    (identifier)
    (default_parameter)
    (list_splat_pattern)
    (dictionary_splat_pattern)
    (keyword_separator)
    (positional_separator)
  ] @parameter)

(lambda) @lambda

; ---- docstrings before strings: same node, the docstring name is the more specific one ----

(module
  .
  (expression_statement
    (string) @docstring (#set! inside docstring)))

(function_definition
  body: (block
    .
    (expression_statement
      (string) @docstring (#set! inside docstring))))

(class_definition
  body: (block
    .
    (expression_statement
      (string) @docstring (#set! inside docstring))))

(string) @string

(concatenated_string) @string

; ---- expressions ----------------------------------------------------------------

(call) @call.outer

(call
  arguments: (argument_list) @call.inner (#set! inside call.inner))

(call
  arguments: (generator_expression) @call.inner (#set! inside call.inner))

[
  (list_comprehension)
  (set_comprehension)
  (dictionary_comprehension)
  (generator_expression)
] @comprehension

(if_statement
  condition: (_) @condition)

(elif_clause
  condition: (_) @condition)

(while_statement
  condition: (_) @condition)

(conditional_expression
  (_)
  "if"
  .
  (_) @condition)

(if_clause
  (_) @condition)

(assert_statement
  .
  (_) @condition)

(return_statement
  (_) @return.value)

(assignment
  right: (_) @assignment.rhs)

(augmented_assignment
  right: (_) @assignment.rhs)

; ---- statements -------------------------------------------------------------------

[
  (import_statement)
  (import_from_statement)
  (future_import_statement)
] @import

[
  (expression_statement)
  (return_statement)
  (pass_statement)
  (break_statement)
  (continue_statement)
  (raise_statement)
  (assert_statement)
  (delete_statement)
  (global_statement)
  (nonlocal_statement)
  (type_alias_statement)
  (import_statement)
  (import_from_statement)
  (future_import_statement)
  (if_statement)
  (for_statement)
  (while_statement)
  (try_statement)
  (with_statement)
  (match_statement)
  (function_definition)
  (class_definition)
  (decorated_definition)
] @statement

(block) @block
