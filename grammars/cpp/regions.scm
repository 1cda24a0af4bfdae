; inherits: c
; Regions of C++ code that dcoder can select, expand to and fill: C's patterns
; (c/regions.scm, loaded first) and the ones below for what C++ adds or does differently.
; Capture names are the stable vocabulary described in grammars/README.md.
; (#set! inside CAPTURE): that capture's region excludes its node's first and last child
; (braces, parentheses), so an empty `f()` or `{}` still has a fillable, zero-width inside.
; A #set! belongs inside its pattern's parentheses: at the top level it would start a new,
; empty pattern of its own.
; Where one range carries several names, the pattern written first is the inner one.
; No docstring: a Doxygen `///` or `/** */` comment is a separate comment node beside its
; declaration, not part of it. No comprehension: C++ has none.
; Template parameter lists `<typename T>` are not `parameters`: they are type-level, like
; Rust's and Go's generics, which are not captured either.

; ---- definitions --------------------------------------------------------------

; Methods, constructors, destructors and operators (inline, out-of-line `A::f`, friends) are
; function_definitions, which C's patterns take; `= default;` / `= delete;` ones have no
; body, so no inner.

; `[[nodiscard]] int f()`: the attributes are children of the definition, so the region
; without them runs from the first child after the last attribute to the end.
((function_definition
  (attribute_declaration)
  .
  (_) @function.outer
  (_) @function.outer
  .)
  (#not-match? @function.outer "^\\[\\["))

; Prototypes (C's patterns take `int f(int);`, `A::A(int v);`, `T& f();`, `~A();`...) also
; declare conversion operators `operator int();`. A member declaration (`virtual ~A();`,
; `A(int v);`) is a whole function without a body too. A function pointer `void (*cb)(int);`
; is a variable, not one: its name sits in a parenthesized_declarator, which the name list
; leaves out.
(declaration
  declarator: (operator_cast)) @function.outer

(field_declaration
  declarator: [
    (function_declarator
      declarator: [(identifier) (field_identifier) (qualified_identifier) (destructor_name) (operator_name) (template_function)])
    (pointer_declarator
      declarator: (function_declarator
        declarator: [(identifier) (field_identifier) (qualified_identifier) (destructor_name) (operator_name) (template_function)]))
    (reference_declarator
      (function_declarator
        declarator: [(identifier) (field_identifier) (qualified_identifier) (destructor_name) (operator_name) (template_function)]))
    (operator_cast)
  ]) @function.outer

; A template's `template <...>` header belongs to its definition (T is declared there and the
; definition is no C++ without it), so like a Python decorator it gives a second, larger
; function.outer; the function alone stays the smaller one.
(template_declaration
  (function_definition)) @function.outer

(template_declaration
  (declaration
    declarator: [
      (function_declarator
        declarator: [(identifier) (field_identifier) (qualified_identifier) (destructor_name) (operator_name) (template_function)])
      (pointer_declarator
        declarator: (function_declarator
          declarator: [(identifier) (field_identifier) (qualified_identifier) (destructor_name) (operator_name) (template_function)]))
      (reference_declarator
        (function_declarator
          declarator: [(identifier) (field_identifier) (qualified_identifier) (destructor_name) (operator_name) (template_function)]))
      (operator_cast)
    ])) @function.outer

; Classes, structs, unions and enums with a body. The node ends at `}`: the `;` after it is
; its parent's (it may follow a declarator, `struct {..} p;`), so it is only in the statement.
; A forward declaration `class A;` has no body and is no class region.
(class_specifier
  body: (field_declaration_list) @class.inner (#set! inside class.inner)) @class.outer

; A class template: from `template` to the class's `}`, the `;` left out as above.
(template_declaration
  "template" @class.outer
  [
    (class_specifier body: (_))
    (struct_specifier body: (_))
    (union_specifier body: (_))
  ] @class.outer)

; `[[nodiscard]]`, `[[likely]]` and GNU `__attribute__((...))`.
[
  (attribute_declaration)
  (attribute_specifier)
] @decorator

; The parameter lists of functions, of function types (`std::function<int(int)>`) and of
; lambdas. A catch clause's `(const E& e)` is an exception declaration, not parameters.
(lambda_declarator
  parameters: (parameter_list) @parameters (#set! inside parameters))

; C's variadic `...` is a parameter, as Python's `*` separator is.
(function_declarator
  parameters: (parameter_list
    [
      (parameter_declaration)
      (optional_parameter_declaration)
      (variadic_parameter_declaration)
      "..."
    ] @parameter))

(abstract_function_declarator
  parameters: (parameter_list
    [
      (parameter_declaration)
      (optional_parameter_declaration)
      (variadic_parameter_declaration)
      "..."
    ] @parameter))

(lambda_declarator
  parameters: (parameter_list
    [
      (parameter_declaration)
      (optional_parameter_declaration)
      (variadic_parameter_declaration)
      "..."
    ] @parameter))

; `[&](int x) { ... }`; its body is a plain block.
(lambda_expression) @lambda

; ---- strings ----------------------------------------------------------------------

; Raw delimiters `R"(...)"` included, as prefixes (`u8"`, `L"`) are.
(raw_string_literal) @string

; ---- expressions ----------------------------------------------------------------

; `new T(...)` calls a constructor; `new int[3]` has no argument list and is no call.
(new_expression
  arguments: (argument_list)) @call.outer

(new_expression
  arguments: (argument_list) @call.inner (#set! inside call.inner))

; The test without the parentheses around it; `if (int y = f(); y > 1)` tests `y > 1`, and
; `if (auto p = get())` its declaration. A switch's value is no test.
(if_statement
  condition: (condition_clause
    value: (_) @condition))

(while_statement
  condition: (condition_clause
    value: (_) @condition))

(do_statement
  condition: (parenthesized_expression
    (_) @condition))

; Like Python's assert.
(static_assert_declaration
  condition: (_) @condition)

(return_statement
  (_) @return.value)

(co_return_statement
  (_) @return.value)

; Assignments and initialisers, for the values C's patterns leave out.
(assignment_expression
  right: (_) @assignment.rhs)

(init_declarator
  "="
  value: (_) @assignment.rhs)

; Initialisers `int v{1, 2}` (the braced list is a value itself, as after `=`) and
; `Foo a(1, 2)` (its arguments, without the parentheses).
(init_declarator
  value: (initializer_list) @assignment.rhs)

(init_declarator
  value: (argument_list) @assignment.rhs (#set! inside assignment.rhs))

; `if (auto p = get())`: a condition's declaration holds its value directly.
(declaration
  value: (_) @assignment.rhs)

; Default member initialisers `int x = 5;`, `int y{6};`; not a pure virtual's `= 0`.
(field_declaration
  declarator: [
    (field_identifier)
    (array_declarator)
    (pointer_declarator declarator: (field_identifier))
  ]
  default_value: (_) @assignment.rhs)

; A constructor's member initialisers `: value_(v), name_{"x"}` initialise members as
; initialisers do variables: the same regions.
(field_initializer
  (initializer_list) @assignment.rhs)

(field_initializer
  (argument_list) @assignment.rhs (#set! inside assignment.rhs))

; ---- statements -------------------------------------------------------------------

; `using namespace std;`, `using std::string;` and C++20 `import std;`; a type alias
; `using T = int;` imports nothing.
[
  (using_declaration)
  (import_declaration)
] @import

(preproc_include
  "#include" @statement
  path: (_) @statement)

; A member declaration (field_declaration) is a class body's statement.
[
  (expression_statement)
  (return_statement)
  (co_return_statement)
  (co_yield_statement)
  (break_statement)
  (continue_statement)
  (goto_statement)
  (throw_statement)
  (labeled_statement)
  (attributed_statement)
  (if_statement)
  (for_statement)
  (for_range_loop)
  (while_statement)
  (do_statement)
  (switch_statement)
  (try_statement)
  (function_definition)
  (template_declaration)
  (template_instantiation)
  (namespace_definition)
  (namespace_alias_definition)
  (using_declaration)
  (alias_declaration)
  (type_definition)
  (static_assert_declaration)
  (linkage_specification)
  (import_declaration)
  (concept_definition)
  (friend_declaration)
  (field_declaration)
] @statement

; `class A {...};`: the specifier and its `;` are siblings, as C's struct, union and enum
; are (c/regions.scm). Not in a template_declaration, which is the statement itself: the
; class's `template ... }` region would overlap `class A {...};` without either holding the
; other.
((_
  (class_specifier) @statement
  .
  ";" @statement) @_parent
  (#not-kind-eq? @_parent template_declaration))

; Namespace and `extern "C" { }` bodies.
((declaration_list) @block (#set! inside block))

; A case's statements are a block without braces: first statement to last.
(case_statement
  ":"
  .
  (_) @block
  (_)* @block
  .)
