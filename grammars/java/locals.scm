; Names in scope in Java, in the tree-sitter locals conventions (see grammars/README.md, "Names in
; scope"). A name is visible in its whole scope (a block, a lambda, a method, or the statement
; that declares it in its header: `for (int i ...)`). A class's fields, methods and enum
; constants are visible in the whole class, and so are fields set through `this`.

; ---- scopes ---------------------------------------------------------------------------------

(program) @local.scope
(class_declaration) @local.scope
(interface_declaration) @local.scope
(enum_declaration) @local.scope
(record_declaration) @local.scope
(annotation_type_declaration) @local.scope
(object_creation_expression (class_body) @local.scope)  ; an anonymous class
(method_declaration) @local.scope
(constructor_declaration) @local.scope
(compact_constructor_declaration) @local.scope
(lambda_expression) @local.scope
(block) @local.scope
(for_statement) @local.scope
(catch_clause) @local.scope
(try_with_resources_statement) @local.scope
(switch_block_statement_group) @local.scope
(switch_rule) @local.scope
; `for (String name : names)` has its name in a `name:` field, which would read as the scope's own
; name (dcoder.syntax.scope): the loop is no scope, so the name is its block's

; ---- definitions ----------------------------------------------------------------------------

(class_declaration name: (identifier) @local.definition)
(interface_declaration name: (identifier) @local.definition)
(enum_declaration name: (identifier) @local.definition)
(record_declaration name: (identifier) @local.definition)
(annotation_type_declaration name: (identifier) @local.definition)
(method_declaration name: (identifier) @local.definition)
(type_parameter (type_identifier) @local.definition)

(formal_parameter name: (identifier) @local.definition)
(spread_parameter (variable_declarator name: (identifier) @local.definition))
(catch_formal_parameter name: (identifier) @local.definition)
(lambda_expression parameters: (identifier) @local.definition)
(inferred_parameters (identifier) @local.definition)
(local_variable_declaration declarator: (variable_declarator name: (identifier) @local.definition))
(enhanced_for_statement name: (identifier) @local.definition)
(resource name: (identifier) @local.definition)
(instanceof_expression name: (identifier) @local.definition)

(field_declaration declarator: (variable_declarator name: (identifier) @local.definition.field))
(constant_declaration declarator: (variable_declarator name: (identifier) @local.definition.field))
(enum_constant name: (identifier) @local.definition.field)
(record_declaration parameters: (formal_parameters (formal_parameter name: (identifier) @local.definition.field)))
(field_access
  object: (this)
  field: (identifier) @local.definition.field)

; rooted at the import: module-level names are searched only this deep (dcoder.syntax.scope)
(import_declaration (scoped_identifier name: (identifier) @local.definition))

; ---- references -----------------------------------------------------------------------------

(identifier) @local.reference
(type_identifier) @local.reference
