; Names in scope in Go, in the tree-sitter locals conventions (see grammars/README.md, "Names in
; scope"). A name is visible in its whole scope (a block, or the statement that declares it in
; its header: `for i := ...`, `if n := ...; ...`). A struct's fields and an interface's methods
; are fields of the file: a method reaches them through its receiver from anywhere.

; ---- scopes ---------------------------------------------------------------------------------

(source_file) @local.scope
(function_declaration) @local.scope
(method_declaration) @local.scope
(func_literal) @local.scope
(block) @local.scope
(for_statement) @local.scope
(if_statement) @local.scope
(expression_switch_statement) @local.scope
(type_switch_statement) @local.scope
(expression_case) @local.scope
(type_case) @local.scope
(communication_case) @local.scope
; signatures without a body: their parameters name nothing outside them
(method_elem) @local.scope
(function_type) @local.scope

; ---- definitions ----------------------------------------------------------------------------

(function_declaration name: (identifier) @local.definition)
(method_declaration name: (field_identifier) @local.definition)
(type_spec name: (type_identifier) @local.definition)
(type_alias name: (type_identifier) @local.definition)
(type_parameter_declaration name: (identifier) @local.definition)

(parameter_declaration name: (identifier) @local.definition)
(variadic_parameter_declaration name: (identifier) @local.definition)

(var_spec name: (identifier) @local.definition)
(const_spec name: (identifier) @local.definition)
(short_var_declaration left: (expression_list (identifier) @local.definition))
(range_clause left: (expression_list (identifier) @local.definition))
(type_switch_statement alias: (expression_list (identifier) @local.definition))
(receive_statement left: (expression_list (identifier) @local.definition))
(labeled_statement label: (label_name) @local.definition)

; rooted at the declaration: module-level names are searched only this deep (dcoder.syntax.scope)
(import_declaration (import_spec name: (package_identifier) @local.definition))
(import_declaration (import_spec_list (import_spec name: (package_identifier) @local.definition)))
(type_declaration (type_spec type: (struct_type (field_declaration_list
  (field_declaration name: (field_identifier) @local.definition.field)))))
(type_declaration (type_spec type: (interface_type (method_elem name: (field_identifier) @local.definition.field))))

; ---- references -----------------------------------------------------------------------------

(identifier) @local.reference
(type_identifier) @local.reference
(package_identifier) @local.reference
