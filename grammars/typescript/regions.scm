; inherits: javascript
; Regions of TypeScript code that dcoder can select, expand to and fill: JavaScript's
; patterns (javascript/regions.scm, loaded first) and the ones below for what TypeScript adds
; or does differently.
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

; A class's own decorators are its children: the node is the decorated region, and the
; keywords-to-body part is the one without decorators.
(abstract_class_declaration
  (decorator)
  "abstract" @class.outer
  body: (class_body) @class.outer)

[
  (abstract_class_declaration
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

; ---- expressions ----------------------------------------------------------------

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

(return_statement
  (_) @return.value)

; ---- statements -------------------------------------------------------------------

(import_alias) @import

[
  (lexical_declaration)
  (variable_declaration)
  (import_alias)
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

((switch_body) @block (#set! inside block))
