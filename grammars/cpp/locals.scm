; inherits: c
; Names in scope in C++: C's patterns (c/locals.scm, loaded first) and what C++ adds. A class's
; members (fields and methods) are fields and names of the scope around the class, so a method
; defined out of line (`int Cache::put(...)`) reaches them too. See grammars/README.md, "Names in
; scope".

; ---- scopes ---------------------------------------------------------------------------------

(namespace_definition) @local.scope
(lambda_expression) @local.scope
(catch_clause) @local.scope
; `for (auto &value : values)` has its name in a `declarator:` field, which would read as the
; scope's own name (dcoder.syntax.scope): the loop is no scope, so the name is its block's

; ---- definitions ----------------------------------------------------------------------------

(namespace_definition name: (namespace_identifier) @local.definition)
(class_specifier name: (type_identifier) @local.definition)
(alias_declaration name: (type_identifier) @local.definition)
(type_parameter_declaration (type_identifier) @local.definition)
(optional_type_parameter_declaration name: (type_identifier) @local.definition)
(function_declarator declarator: (field_identifier) @local.definition)
(function_declarator declarator: (qualified_identifier name: (identifier) @local.definition))

(parameter_declaration declarator: (reference_declarator (identifier) @local.definition))
(optional_parameter_declaration declarator: [
  (identifier) @local.definition
  (reference_declarator (identifier) @local.definition)
  (pointer_declarator declarator: (identifier) @local.definition)
])
(declaration declarator: (init_declarator declarator: (reference_declarator (identifier) @local.definition)))
(for_range_loop declarator: [
  (identifier) @local.definition
  (reference_declarator (identifier) @local.definition)
  (structured_binding_declarator (identifier) @local.definition)
])
(declaration declarator: (init_declarator declarator: (structured_binding_declarator (identifier) @local.definition)))
(lambda_capture_specifier (identifier) @local.definition)

; rooted at the declaration: module-level names are searched only this deep (dcoder.syntax.scope)
(using_declaration (qualified_identifier name: (identifier) @local.definition))
(function_definition declarator: (function_declarator declarator: (qualified_identifier name: (identifier) @local.definition)))
(function_definition declarator: (reference_declarator (function_declarator declarator: (qualified_identifier name: (identifier) @local.definition))))
(class_specifier body: (field_declaration_list [
  (field_declaration declarator: [
    (field_identifier) @local.definition.field
    (pointer_declarator declarator: (field_identifier) @local.definition.field)
    (reference_declarator (field_identifier) @local.definition.field)
    (array_declarator declarator: (field_identifier) @local.definition.field)
    (function_declarator declarator: (field_identifier) @local.definition.field)
  ])
  (function_definition declarator: (function_declarator declarator: (field_identifier) @local.definition.field))
  (template_declaration (function_definition declarator: (function_declarator declarator: (field_identifier) @local.definition.field)))
]))
(struct_specifier body: (field_declaration_list [
  (field_declaration declarator: (function_declarator declarator: (field_identifier) @local.definition.field))
  (function_definition declarator: (function_declarator declarator: (field_identifier) @local.definition.field))
]))
(template_declaration (function_definition declarator: (function_declarator declarator: (identifier) @local.definition)))
(template_declaration (class_specifier name: (type_identifier) @local.definition))

; ---- references -----------------------------------------------------------------------------

(namespace_identifier) @local.reference
