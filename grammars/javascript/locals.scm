; Names in scope, in the tree-sitter locals conventions (see grammars/README.md, "Names in scope").
; A name is visible in its whole scope (var, function and class hoisting; let and const are
; close enough for a lean towards names).

; ---- scopes ---------------------------------------------------------------------------------

(program) @local.scope
(function_declaration) @local.scope
(function_expression) @local.scope
(generator_function_declaration) @local.scope
(arrow_function) @local.scope
(method_definition) @local.scope
(class_declaration) @local.scope
(class) @local.scope
(statement_block) @local.scope
(for_statement) @local.scope
(for_in_statement) @local.scope
(catch_clause) @local.scope

; ---- definitions ----------------------------------------------------------------------------

(function_declaration name: (identifier) @local.definition)
(generator_function_declaration name: (identifier) @local.definition)
(class_declaration name: (_) @local.definition)  ; a type_identifier in TypeScript
(method_definition name: (property_identifier) @local.definition)
; a field_definition, named without its node type: TypeScript, which inherits this file, has none
(class_body (_ property: (property_identifier) @local.definition))

; TypeScript wraps each parameter in a required_parameter: these compile for both grammars
(formal_parameters (_) @local.definition (#kind-eq? @local.definition identifier))
(assignment_pattern left: (identifier) @local.definition)
(rest_pattern (identifier) @local.definition)
(arrow_function parameter: (identifier) @local.definition)
(object_pattern (shorthand_property_identifier_pattern) @local.definition)
(array_pattern (identifier) @local.definition)

(variable_declarator name: (identifier) @local.definition)
(for_in_statement left: (identifier) @local.definition)
(catch_clause parameter: (identifier) @local.definition)

; rooted at the statement: module-level names are searched only this deep (dcoder.syntax.scope)
(import_statement (import_clause (named_imports (import_specifier name: (identifier) @local.definition .))))
(import_statement (import_clause (named_imports (import_specifier alias: (identifier) @local.definition))))
(import_statement (import_clause (identifier) @local.definition))
(import_statement (import_clause (namespace_import (identifier) @local.definition)))
(export_statement (lexical_declaration (variable_declarator name: (identifier) @local.definition)))

(member_expression
  object: (this)
  property: (property_identifier) @local.definition.field)

; ---- references -----------------------------------------------------------------------------

(identifier) @local.reference
