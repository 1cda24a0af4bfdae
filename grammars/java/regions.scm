; Regions of Java code that dcoder can select, expand to and fill.
; Capture names are the stable vocabulary described in grammars/README.md.
; (#set! inside CAPTURE): that capture's region excludes its node's first and last child
; (braces, parentheses, quotes), so an empty `f()` or `{}` still has a fillable, zero-width inside.
; A #set! belongs inside its pattern's parentheses: at the top level it would start a new,
; empty pattern of its own.
; Where one range carries several names, the pattern written first is the inner one.
; (expression) is the grammar's supertype: it keeps comments out of the captures.
; Annotations are modifiers in Java: they are children of the declaration node, so an annotated
; method or class has only the one outer region, with them.
; No docstring: a Javadoc `/** */` is a plain block_comment beside its declaration, not part of
; it, and one leaf node whose `/**`, `*/` and ` * ` margins a query cannot trim.
; No comprehension: Java has none (streams are method calls).

; ---- definitions --------------------------------------------------------------

; Methods and constructors are functions.
(method_declaration
  body: (block) @function.inner (#set! inside function.inner)) @function.outer

; An abstract, interface or native method `double price();` has no body, so no inner.
(method_declaration
  !body) @function.outer

(constructor_declaration
  body: (constructor_body) @function.inner (#set! inside function.inner)) @function.outer

; A record's `Point { ... }`: the canonical constructor without a parameter list.
(compact_constructor_declaration
  body: (block) @function.inner (#set! inside function.inner)) @function.outer

; `String value() default "";` in an `@interface`: a bodiless method.
(annotation_type_element_declaration) @function.outer

; Classes, interfaces, enums, records and `@interface`s all hold what a class holds.
(class_declaration
  body: (class_body) @class.inner (#set! inside class.inner)) @class.outer

(interface_declaration
  body: (interface_body) @class.inner (#set! inside class.inner)) @class.outer

(enum_declaration
  body: (enum_body) @class.inner (#set! inside class.inner)) @class.outer

(record_declaration
  body: (class_body) @class.inner (#set! inside class.inner)) @class.outer

(annotation_type_declaration
  body: (annotation_type_body) @class.inner (#set! inside class.inner)) @class.outer

; Anonymous classes: `new Foo() { ... }` and an enum constant with a body.
(object_creation_expression
  (class_body) @class.inner (#set! inside class.inner)) @class.outer

(enum_constant
  body: (class_body) @class.inner (#set! inside class.inner)) @class.outer

; `@Override`, `@Foo(x = 1)`, on declarations, parameters and types alike.
[
  (marker_annotation)
  (annotation)
] @decorator

; Methods, constructors, lambdas and a record's header `record P(int x, int y)`.
((formal_parameters) @parameters (#set! inside parameters))

; `(a, b) -> ...`: untyped lambda parameters.
((inferred_parameters) @parameters (#set! inside parameters))

; `x -> ...`: a single parameter without parentheses is the whole list.
(lambda_expression
  parameters: (identifier) @parameters)

(formal_parameters
  [
    (formal_parameter)
    (spread_parameter)
    (receiver_parameter)
  ] @parameter)

(inferred_parameters
  (identifier) @parameter)

(lambda_expression
  parameters: (identifier) @parameter)

(lambda_expression) @lambda

; ---- strings ----------------------------------------------------------------------

; Plain literals and `"""` text blocks alike (a char literal is no string).
(string_literal) @string

; ---- expressions ----------------------------------------------------------------

; Method calls (receiver included) and `new X(...)`, anonymous class body included.
[
  (method_invocation)
  (object_creation_expression)
] @call.outer

(method_invocation
  arguments: (argument_list) @call.inner (#set! inside call.inner))

(object_creation_expression
  arguments: (argument_list) @call.inner (#set! inside call.inner))

; `super(x);` / `outer.this(x);`: the call without the statement's `;`.
(explicit_constructor_invocation
  object: (_)? @call.outer
  constructor: (_) @call.outer
  arguments: (argument_list) @call.outer @call.inner (#set! inside call.inner))

; `RED("r")` calls the enum's constructor.
(enum_constant
  arguments: (argument_list) @call.inner (#set! inside call.inner)) @call.outer

; `@Foo(x = 1)` reads like a call of Foo, as Python's `@foo(x=1)` is one: `@` left out.
(annotation
  name: (_) @call.outer
  arguments: (annotation_argument_list) @call.outer @call.inner (#set! inside call.inner))

; The test without the parentheses the statement requires around it.
(if_statement
  condition: (parenthesized_expression
    (expression) @condition))

(while_statement
  condition: (parenthesized_expression
    (expression) @condition))

(do_statement
  condition: (parenthesized_expression
    (expression) @condition))

; `for (;;)` has none.
(for_statement
  condition: (expression) @condition)

(ternary_expression
  condition: (_) @condition)

(assert_statement
  .
  (expression) @condition)

; `case String s when s.isEmpty() ->`: the guard's test.
(guard
  (expression) @condition)

(return_statement
  (expression) @return.value)

; Plain and compound assignments, field, constant and local variable initialisers
; (`int a, b = 2;` gives b's), and try-with-resources `var in = open()`.
(assignment_expression
  right: (_) @assignment.rhs)

(variable_declarator
  value: (_) @assignment.rhs)

(resource
  value: (_) @assignment.rhs)

; ---- statements -------------------------------------------------------------------

; `import a.b.C;`, `import a.b.*;`, `import static a.B.c;`.
(import_declaration) @import

; Declarations are statements, at the top level and in class bodies as well as in blocks.
[
  (package_declaration)
  (import_declaration)
  (module_declaration)
  (class_declaration)
  (interface_declaration)
  (enum_declaration)
  (record_declaration)
  (annotation_type_declaration)
  (method_declaration)
  (constructor_declaration)
  (compact_constructor_declaration)
  (annotation_type_element_declaration)
  (field_declaration)
  (constant_declaration)
  (static_initializer)
  (local_variable_declaration)
  (expression_statement)
  (explicit_constructor_invocation)
  (labeled_statement)
  (if_statement)
  (while_statement)
  (do_statement)
  (for_statement)
  (enhanced_for_statement)
  (return_statement)
  (yield_statement)
  (break_statement)
  (continue_statement)
  (throw_statement)
  (assert_statement)
  (try_statement)
  (try_with_resources_statement)
  (synchronized_statement)
] @statement

; A bare `{ ... }` (an instance initializer in a class body) is a statement; a body block is
; not. A `switch` standing as a statement is a switch_expression in the grammar.
(block
  [(block) (switch_expression)] @statement)

(constructor_body
  [(block) (switch_expression)] @statement)

(switch_block_statement_group
  [(block) (switch_expression)] @statement)

(labeled_statement
  [(block) (switch_expression)] @statement)

(class_body
  (block) @statement)

(enum_body_declarations
  (block) @statement)

((block) @block (#set! inside block))

((constructor_body) @block (#set! inside block))

; Bodies of classes hold declarations, i.e. statements; a switch's braces hold its cases.
((class_body) @block (#set! inside block))

((interface_body) @block (#set! inside block))

((enum_body) @block (#set! inside block))

((annotation_type_body) @block (#set! inside block))

((switch_block) @block (#set! inside block))

; `case 1: a(); break;` has no braces: from its first statement to its last.
(switch_block_statement_group
  ":"
  .
  (_) @block
  _* @block
  .)
