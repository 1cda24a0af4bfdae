; inherits: javascript
; Names in scope in TypeScript (and tsx): JavaScript's patterns (javascript/locals.scm, loaded
; first) and what TypeScript adds: typed parameters, parameter properties, type declarations.
; See grammars/README.md, "Names in scope".

; ---- scopes ---------------------------------------------------------------------------------

(abstract_class_declaration) @local.scope
; signatures without a body: their parameters name nothing outside them
(function_signature) @local.scope
(method_signature) @local.scope
(abstract_method_signature) @local.scope
(call_signature) @local.scope
(construct_signature) @local.scope
(function_type) @local.scope
(constructor_type) @local.scope

; ---- definitions ----------------------------------------------------------------------------

(class_declaration name: (type_identifier) @local.definition)
(abstract_class_declaration name: (type_identifier) @local.definition)
(interface_declaration name: (type_identifier) @local.definition)
(type_alias_declaration name: (type_identifier) @local.definition)
(enum_declaration name: (identifier) @local.definition)
(function_signature name: (identifier) @local.definition)
(method_signature name: (property_identifier) @local.definition)
(abstract_method_signature name: (property_identifier) @local.definition)
(public_field_definition name: (property_identifier) @local.definition)
(type_parameter name: (type_identifier) @local.definition)

(required_parameter pattern: (identifier) @local.definition)
(optional_parameter pattern: (identifier) @local.definition)
; `constructor(private size: number)` declares a field too
(required_parameter (accessibility_modifier) pattern: (identifier) @local.definition.field)
(optional_parameter (accessibility_modifier) pattern: (identifier) @local.definition.field)

(export_statement (function_signature name: (identifier) @local.definition))
(export_statement (interface_declaration name: (type_identifier) @local.definition))
(export_statement (type_alias_declaration name: (type_identifier) @local.definition))
(export_statement (enum_declaration name: (identifier) @local.definition))
(export_statement (class_declaration name: (type_identifier) @local.definition))

; ---- references -----------------------------------------------------------------------------

(type_identifier) @local.reference
