; Regions of C code that dcoder can select, expand to and fill. C++ inherits this file
; (cpp/regions.scm): its patterns name only what both grammars have.
; Capture names are the stable vocabulary described in grammars/README.md.
; (#set! inside CAPTURE): that capture's region excludes its node's first and last child
; (braces, parentheses), so an empty `f()` or `{}` still has a fillable, zero-width inside.
; A #set! belongs inside its pattern's parentheses: at the top level it would start a new,
; empty pattern of its own.
; Where one range carries several names, the pattern written first is the inner one.
; Not defined: lambda and comprehension (C has neither); docstring, because a doc comment is a
; separate comment node beside its declaration, not part of it.
; Macros (`#define`) have no regions of their own: a macro body is a raw token string (the
; grammar's preproc_arg keeps trailing blanks, the directive keeps its newline), not C code.
; Preprocessor conditionals (#if / #ifdef) only wrap nodes: what they hold keeps its regions,
; and an #if / #elif test is a condition.

; ---- definitions --------------------------------------------------------------

(function_definition
  body: (compound_statement) @function.inner (#set! inside function.inner)) @function.outer

; Also without a body: C++'s `= default;`, and a definition tree-sitter recovered from an error.
(function_definition) @function.outer

; A prototype `int f(int);`, also returning a pointer (`char *f(void);`) or, in C++, a
; reference, is a whole function without a body. `int (*fp)(int);` is not: its name is
; parenthesized, it is a pointer variable. Any other name node will do, for C++'s `A::f`,
; `~A` and `operator==` (@_name only feeds the predicate).
(declaration
  declarator: (function_declarator
    declarator: (_) @_name (#not-match? @_name "^[(]"))) @function.outer

(declaration
  declarator: (pointer_declarator
    declarator: (function_declarator
      declarator: (_) @_name (#not-match? @_name "^[(]")))) @function.outer

; C++'s reference_declarator `T& f();`, by its token (C has `&` too, as an operator).
(declaration
  declarator: (_
    ["&" "&&"]
    .
    (function_declarator
      declarator: (_) @_name (#not-match? @_name "^[(]")))) @function.outer

(declaration
  declarator: (pointer_declarator
    declarator: (pointer_declarator
      declarator: (function_declarator
        declarator: (identifier))))) @function.outer

; Structs, unions and enums with a body are C's record types: the closest thing to a class.
; `struct s x;` (no body) only names one.
(struct_specifier
  body: (field_declaration_list) @class.inner (#set! inside class.inner)) @class.outer

(union_specifier
  body: (field_declaration_list) @class.inner (#set! inside class.inner)) @class.outer

(enum_specifier
  body: (enumerator_list) @class.inner (#set! inside class.inner)) @class.outer

; `typedef struct { .. } name;`: the name sits outside the braces, so the typedef gives a
; second, larger class region (as a decorated class does).
(type_definition
  type: [
    (struct_specifier body: (_))
    (union_specifier body: (_))
    (enum_specifier body: (_))
  ]) @class.outer

; C23 `[[nodiscard]]`, GNU `__attribute__((..))` and MSVC `__declspec(..)` annotate a
; declaration as a decorator does. They are children of the declaration, which keeps them.
[
  (attribute_declaration)
  (attribute_specifier)
  (ms_declspec_modifier)
] @decorator

; Any parameter list: of a definition, a prototype, a function pointer type.
(function_declarator
  parameters: (parameter_list) @parameters (#set! inside parameters))

(abstract_function_declarator
  parameters: (parameter_list) @parameters (#set! inside parameters))

; `(void)` says "no parameters": it is not one.
(function_declarator
  parameters: (parameter_list
    (parameter_declaration) @parameter (#not-eq? @parameter "void")))

(abstract_function_declarator
  parameters: (parameter_list
    (parameter_declaration) @parameter (#not-eq? @parameter "void")))

; A K&R list holds bare identifiers. `...` is named by its token: C++ has no variadic_parameter.
(parameter_list
  [
    (_ "...")
    (identifier)
  ] @parameter)

; ---- expressions ----------------------------------------------------------------

; Adjacent literals ("a" "b") form one concatenated_string; each piece is a string too.
(concatenated_string) @string

(string_literal) @string

(call_expression) @call.outer

(call_expression
  arguments: (argument_list) @call.inner (#set! inside call.inner))

; The grammar wraps if / while / do tests in a parenthesized_expression: the test is what it
; holds (a comment in there is not). A GNU statement expression `({ .. })` can be one too.
; (C++ wraps if and while tests in a condition_clause, hence the wildcard.)
(if_statement
  condition: (_
    [(expression) (comma_expression) (compound_statement)] @condition))

(while_statement
  condition: (_
    [(expression) (comma_expression) (compound_statement)] @condition))

(do_statement
  condition: (parenthesized_expression
    [(expression) (comma_expression) (compound_statement)] @condition))

; A for header's middle clause has no parentheses of its own.
(for_statement
  condition: (_) @condition)

(conditional_expression
  condition: (_) @condition)

(preproc_if
  condition: (_) @condition)

(preproc_elif
  condition: (_) @condition)

; A value C++ names first (a lambda, `new T(..)`, a raw string) is left to cpp/regions.scm,
; whose own patterns come after these: C has none of those nodes.
(return_statement
  [(expression) (comma_expression)] @return.value
  (#not-kind-eq? @return.value lambda_expression new_expression raw_string_literal))

; Plain and compound assignments (`=`, `+=`, ..), variable initialisers, enum constant
; values and designated initialisers (`.x = 1`).
(assignment_expression
  right: (_) @assignment.rhs
  (#not-kind-eq? @assignment.rhs lambda_expression new_expression raw_string_literal))

(init_declarator
  "="
  value: (_) @assignment.rhs
  (#not-kind-eq? @assignment.rhs lambda_expression new_expression raw_string_literal))

(enumerator
  value: (_) @assignment.rhs)

(initializer_pair
  value: (_) @assignment.rhs)

; ---- statements -------------------------------------------------------------------

; The directive without the newline that ends it.
(preproc_include
  "#include" @import
  path: (_) @import)

; A bare `{ .. }` is a statement; a body block is not.
(compound_statement
  (compound_statement) @statement)

(case_statement
  (compound_statement) @statement)

; Declarations and definitions are statements at the top level as well as in blocks. A C
; declaration always ends with its `;`; a C++ condition's declaration `if (auto p = get())`
; has none and is no statement.
(declaration
  ";") @statement

[
  (expression_statement)
  (type_definition)
  (function_definition)
  (return_statement)
  (break_statement)
  (continue_statement)
  (goto_statement)
  (labeled_statement)
  (case_statement)
  (attributed_statement)
  (if_statement)
  (while_statement)
  (do_statement)
  (for_statement)
  (switch_statement)
] @statement

; `struct s { .. };` declares only the type: the grammar gives the `;` no parent of its own.
; In C++, which inherits this file, a template_declaration is the statement itself (see
; cpp/regions.scm).
((_
  [(struct_specifier) (union_specifier) (enum_specifier)] @statement
  .
  ";" @statement) @_parent
  (#not-kind-eq? @_parent template_declaration))

((compound_statement) @block (#set! inside block))

; A case body has no braces: it runs from its first statement to its last.
(case_statement
  ":"
  .
  (_) @block
  _* @block
  .)
