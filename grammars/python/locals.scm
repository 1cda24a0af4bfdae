; Names in scope, in the tree-sitter locals conventions (see grammars/README.md, "Names in scope"):
; @local.scope opens a scope, @local.definition names what a scope defines (visible anywhere in
; it: Python binds a name for its whole function), @local.definition.field an attribute set on
; self or cls (visible in the whole class), @local.reference a name read.

; ---- scopes ---------------------------------------------------------------------------------

(module) @local.scope
(function_definition) @local.scope
(lambda) @local.scope
(class_definition) @local.scope

; ---- definitions ----------------------------------------------------------------------------

(function_definition name: (identifier) @local.definition)
(class_definition name: (identifier) @local.definition)

(parameters (identifier) @local.definition)
(lambda_parameters (identifier) @local.definition)
(typed_parameter (identifier) @local.definition)
(default_parameter name: (identifier) @local.definition)
(typed_default_parameter name: (identifier) @local.definition)
(list_splat_pattern (identifier) @local.definition)
(dictionary_splat_pattern (identifier) @local.definition)

(assignment left: (identifier) @local.definition)
(assignment left: (pattern_list (identifier) @local.definition))
(assignment left: (tuple_pattern (identifier) @local.definition))
(augmented_assignment left: (identifier) @local.definition)
(named_expression name: (identifier) @local.definition)
(for_statement left: (identifier) @local.definition)
(for_statement left: (pattern_list (identifier) @local.definition))
(for_in_clause left: (identifier) @local.definition)
(for_in_clause left: (pattern_list (identifier) @local.definition))
(as_pattern alias: (as_pattern_target (identifier) @local.definition))
(except_clause (as_pattern alias: (as_pattern_target (identifier) @local.definition)))
(global_statement (identifier) @local.definition)

(import_statement name: (dotted_name . (identifier) @local.definition))
(import_statement name: (aliased_import alias: (identifier) @local.definition))
(import_from_statement name: (dotted_name (identifier) @local.definition .))
(import_from_statement name: (aliased_import alias: (identifier) @local.definition))

((attribute
   object: (identifier) @_receiver
   attribute: (identifier) @local.definition.field)
 (#any-of? @_receiver "self" "cls"))

; ---- references -----------------------------------------------------------------------------

(identifier) @local.reference
