; Regions of TypeScript code that dcoder can select, expand to and fill.
; The same file serves tsx (TypeScript with JSX): it only names nodes both grammars have.
; Capture names are the stable vocabulary described in grammars/README.md.
; (#set! inside CAPTURE): that capture's region excludes its node's first and last child
; (braces, parentheses or quotes), so an empty `f()` or `{}` still has a zero-width inside.
; A #set! belongs inside its pattern's parentheses: at the top level it would start a new,
; empty pattern of its own.
; Where one range carries several names, the pattern written first is the inner one.
; No docstring: JSDoc `/** */` is a plain comment node, detached from what it documents.
; No comprehension: TypeScript has none.

; ---- definitions --------------------------------------------------------------

[
  (function_declaration
    body: (statement_block) @function.inner (#set! inside function.inner))
  (generator_function_declaration
    body: (statement_block) @function.inner (#set! inside function.inner))
  (method_definition
    body: (statement_block) @function.inner (#set! inside function.inner))
] @function.outer

; Overloads, `declare`, interface and abstract methods: signatures without a body.
[
  (function_signature)
  (method_signature)
  (abstract_method_signature)
] @function.outer

; A method's decorators are its siblings in the class body: the run of them plus the method
; gives the larger, decorated region.
(class_body
  (decorator)+ @function.outer
  .
  (method_definition) @function.outer)

; Function literals are lambdas; one with a `{ }` body is also a function, so that
; "fill the function body" inside a callback means the callback's body.
[
  (arrow_function)
  (function_expression)
  (generator_function)
] @lambda

(arrow_function
  body: (statement_block) @function.inner (#set! inside function.inner)) @function.outer

[
  (function_expression
    body: (statement_block) @function.inner (#set! inside function.inner))
  (generator_function
    body: (statement_block) @function.inner (#set! inside function.inner))
] @function.outer

; A class's own decorators are its children: the node is the decorated region, and the
; keywords-to-body part is the one without decorators.
(class_declaration
  (decorator)
  "class" @class.outer
  body: (class_body) @class.outer)

(abstract_class_declaration
  (decorator)
  "abstract" @class.outer
  body: (class_body) @class.outer)

[
  (class_declaration
    body: (class_body) @class.inner (#set! inside class.inner))
  (abstract_class_declaration
    body: (class_body) @class.inner (#set! inside class.inner))
  (class
    body: (class_body) @class.inner (#set! inside class.inner))
  (interface_declaration
    body: (interface_body) @class.inner (#set! inside class.inner))
  (enum_declaration
    body: (enum_body) @class.inner (#set! inside class.inner))
] @class.outer

; `@D export class X {}`: the decorator belongs to the export statement.
(export_statement
  decorator: (decorator)
  declaration: [
    (class_declaration)
    (abstract_class_declaration)
  ]) @class.outer

(export_statement
  decorator: (decorator)
  value: (class)) @class.outer

(decorator) @decorator

((formal_parameters) @parameters (#set! inside parameters))

; `x => ...`: a lone parameter without parentheses.
(arrow_function
  parameter: (identifier) @parameters)

(formal_parameters
  [
    (required_parameter)
    (optional_parameter)
  ] @parameter)

(arrow_function
  parameter: (identifier) @parameter)

; ---- strings ------------------------------------------------------------------------

(string) @string

(template_string) @string

; ---- expressions ----------------------------------------------------------------

[
  (call_expression)
  (new_expression)
] @call.outer

; Only real argument lists: a tagged template's "arguments" are its template string.
(call_expression
  arguments: (arguments) @call.inner (#set! inside call.inner))

(new_expression
  arguments: (arguments) @call.inner (#set! inside call.inner))

; The test without the parentheses the grammar wraps it in.
(if_statement
  condition: (parenthesized_expression
    (_) @condition))

(while_statement
  condition: (parenthesized_expression
    (_) @condition))

(do_statement
  condition: (parenthesized_expression
    (_) @condition))

; An empty `for (;;)` test is an empty_statement `;`, not a test.
(for_statement
  condition: (_) @condition (#not-eq? @condition ";"))

(ternary_expression
  condition: (_) @condition)

(return_statement
  (_) @return.value)

(assignment_expression
  right: (_) @assignment.rhs)

(augmented_assignment_expression
  right: (_) @assignment.rhs)

(variable_declarator
  value: (_) @assignment.rhs)

; A class field's initialiser: `x = 1` in a class body.
(public_field_definition
  value: (_) @assignment.rhs)

; ---- statements -------------------------------------------------------------------

; Re-exports (`export ... from "m"`) load a module too.
[
  (import_statement)
  (import_alias)
  (export_statement
    source: (_))
] @import

[
  (expression_statement)
  (lexical_declaration)
  (variable_declaration)
  (return_statement)
  (throw_statement)
  (break_statement)
  (continue_statement)
  (debugger_statement)
  (import_statement)
  (import_alias)
  (export_statement)
  (if_statement)
  (switch_statement)
  (for_statement)
  (for_in_statement)
  (while_statement)
  (do_statement)
  (try_statement)
  (with_statement)
  (labeled_statement)
  (function_declaration)
  (generator_function_declaration)
  (function_signature)
  (class_declaration)
  (abstract_class_declaration)
  (interface_declaration)
  (type_alias_declaration)
  (enum_declaration)
  (ambient_declaration)
  (module)
  (public_field_definition)
] @statement

((statement_block) @block (#set! inside block))

((switch_body) @block (#set! inside block))

; The statements after a `case 1:` / `default:`, like a block without braces.
(switch_case
  body: (_)+ @block)

(switch_default
  body: (_)+ @block)
