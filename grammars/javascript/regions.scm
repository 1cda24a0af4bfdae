; Regions of JavaScript code that dcoder can select, expand to and fill. TypeScript inherits
; this file (typescript/regions.scm): its patterns name only what both grammars have.
; Capture names are the stable vocabulary described in grammars/README.md.
; (#set! inside CAPTURE): that capture's region excludes its node's first and last child
; (braces, parentheses or quotes), so an empty `f()` or `{}` still has a fillable, zero-width inside.
; A #set! belongs inside its pattern's parentheses: at the top level it would start a new,
; empty pattern of its own.
; Where one range carries several names, the pattern written first is the inner one.
; (expression), (pattern), (declaration) are the grammar's supertypes: they match a node only
; where the grammar expects one, which keeps comments and `;` out of the captures.
; No docstring: a JSDoc `/** */` is a plain comment beside its declaration, not part of it.
; No comprehension: JavaScript has none.

; ---- definitions --------------------------------------------------------------

; Methods (of classes and object literals) count as functions. Their decorators are
; children of the method node, so a decorated method has only the region with them.
(function_declaration
  body: (statement_block) @function.inner (#set! inside function.inner)) @function.outer

(generator_function_declaration
  body: (statement_block) @function.inner (#set! inside function.inner)) @function.outer

; Function literals are lambdas; one with a `{ }` body is also a function (below), so that
; "fill the function body" inside a callback means the callback's body. The lambda comes
; first: expanding from inside a callback reaches "lambda".
[
  (arrow_function)
  (function_expression)
  (generator_function)
] @lambda

(function_expression
  body: (statement_block) @function.inner (#set! inside function.inner)) @function.outer

(generator_function
  body: (statement_block) @function.inner (#set! inside function.inner)) @function.outer

(method_definition
  body: (statement_block) @function.inner (#set! inside function.inner)) @function.outer

; An arrow function with a block body is a function; one with an expression body is only
; a lambda (like Python's), so it has no function.* regions.
(arrow_function
  body: (statement_block) @function.inner (#set! inside function.inner)) @function.outer

; A decorated class: the class without its decorators first, then the whole node with them.
(class_declaration
  (decorator)
  "class" @class.outer
  body: (class_body) @class.outer)

(class_declaration
  body: (class_body) @class.inner (#set! inside class.inner)) @class.outer

(class
  body: (class_body) @class.inner (#set! inside class.inner)) @class.outer

(decorator) @decorator

((formal_parameters) @parameters (#set! inside parameters))

; `x => ...`: a single parameter without parentheses is the whole list.
(arrow_function
  parameter: (identifier) @parameters)

; Any parameter but a comment: a pattern or one with a default (JavaScript), a required or
; optional parameter (TypeScript, which inherits this file and has no (pattern) there).
((formal_parameters
  (_) @parameter)
  (#not-kind-eq? @parameter comment))

(arrow_function
  parameter: (identifier) @parameter)

; ---- strings ----------------------------------------------------------------------

(string) @string

(template_string) @string

; ---- expressions ----------------------------------------------------------------

; `new C(...)` is a call too; a tagged template's arguments are its string, not a list.
[
  (call_expression)
  (new_expression)
] @call.outer

(call_expression
  arguments: (arguments) @call.inner (#set! inside call.inner))

(new_expression
  arguments: (arguments) @call.inner (#set! inside call.inner))

; The test without the parentheses the statement requires around it.
(if_statement
  condition: (parenthesized_expression
    [
      (expression)
      (sequence_expression)
    ] @condition))

(while_statement
  condition: (parenthesized_expression
    [
      (expression)
      (sequence_expression)
    ] @condition))

(do_statement
  condition: (parenthesized_expression
    [
      (expression)
      (sequence_expression)
    ] @condition))

; `for (;;)` has an empty_statement there, not a test.
(for_statement
  condition: [
    (expression)
    (sequence_expression)
  ] @condition)

(ternary_expression
  condition: (_) @condition)

(return_statement
  [
    (expression)
    (sequence_expression)
  ] @return.value)

; Plain, compound (`+=`, `??=`...) and destructuring assignments, `let`/`const`/`var`
; initialisers and class field initialisers (a field_definition, in TypeScript a
; public_field_definition: named by its field).
(assignment_expression
  right: (_) @assignment.rhs)

(augmented_assignment_expression
  right: (_) @assignment.rhs)

(variable_declarator
  value: (_) @assignment.rhs)

(class_body
  (_
    value: (_) @assignment.rhs))

; ---- statements -------------------------------------------------------------------

(import_statement) @import

; `export ... from "m"` loads a module as an import does.
(export_statement
  source: (_)) @import

; (declaration) also takes `export`'s declaration, but not a `for (let ...;` initialiser.
; Blocks and `;` are left out: a block has its own region. TypeScript's own declarations are
; left to typescript/regions.scm, which names them functions and classes first.
([
  (expression_statement)
  (declaration)
  (import_statement)
  (export_statement)
  (return_statement)
  (break_statement)
  (continue_statement)
  (throw_statement)
  (debugger_statement)
  (if_statement)
  (for_statement)
  (for_in_statement)
  (while_statement)
  (do_statement)
  (switch_statement)
  (try_statement)
  (with_statement)
  (labeled_statement)
] @statement
  (#not-kind-eq? @statement function_signature abstract_class_declaration interface_declaration
    type_alias_declaration enum_declaration ambient_declaration module internal_module import_alias))

; A class field (a field_definition, named by its field) is the class body's declaration
; statement.
(class_body
  (_
    property: (_)) @statement)

((statement_block) @block (#set! inside block))

; A case's statements are a block without braces: first statement to last.
(switch_case
  body: (_)+ @block)

(switch_default
  body: (_)+ @block)
