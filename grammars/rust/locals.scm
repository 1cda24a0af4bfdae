; Names in scope in Rust, in the tree-sitter locals conventions (see grammars/README.md, "Names in
; scope"). A name is visible in its whole scope (a block, a closure, a match arm, or the
; expression that binds it: `for x in`, `if let`, `while let`). Items are the file's (or their
; module's), methods of an impl included; a struct's fields and an enum's variants are fields of
; the file: `self.size` and `Shape::Circle` reach them from anywhere.

; ---- scopes ---------------------------------------------------------------------------------

(source_file) @local.scope
(mod_item) @local.scope
(function_item) @local.scope
(function_signature_item) @local.scope  ; no body: its parameters name nothing outside it
(closure_expression) @local.scope
(block) @local.scope
(for_expression) @local.scope
(if_expression) @local.scope
(while_expression) @local.scope
(match_arm) @local.scope

; ---- definitions ----------------------------------------------------------------------------

(function_item name: (identifier) @local.definition)
(function_signature_item name: (identifier) @local.definition)
(struct_item name: (type_identifier) @local.definition)
(enum_item name: (type_identifier) @local.definition)
(union_item name: (type_identifier) @local.definition)
(trait_item name: (type_identifier) @local.definition)
(type_item name: (type_identifier) @local.definition)
(const_item name: (identifier) @local.definition)
(static_item name: (identifier) @local.definition)
(mod_item name: (identifier) @local.definition)
(macro_definition name: (identifier) @local.definition)
(type_parameters (type_parameter name: (type_identifier) @local.definition))

(parameter pattern: (identifier) @local.definition)
(self_parameter (self) @local.definition)
(closure_parameters (identifier) @local.definition)
(let_declaration pattern: (identifier) @local.definition)
(let_condition pattern: (identifier) @local.definition)
(for_expression pattern: (identifier) @local.definition)
(match_pattern (identifier) @local.definition)

; identifiers inside patterns (`let (a, b)`, `Some(x)`, `Point { x, y: py }`, `ref mut n`)
(tuple_pattern (identifier) @local.definition)
(slice_pattern (identifier) @local.definition)
(tuple_struct_pattern type: (_) (identifier) @local.definition)
(struct_pattern (field_pattern name: (shorthand_field_identifier) @local.definition))
(field_pattern pattern: (identifier) @local.definition)
(ref_pattern (identifier) @local.definition)
(mut_pattern (identifier) @local.definition)
(reference_pattern (identifier) @local.definition)
(captured_pattern . (identifier) @local.definition)
(or_pattern (identifier) @local.definition)

; rooted at the item: module-level names are searched only this deep (dcoder.syntax.scope)
(impl_item body: (declaration_list (function_item name: (identifier) @local.definition)))
(impl_item body: (declaration_list (const_item name: (identifier) @local.definition)))
(trait_item body: (declaration_list (function_item name: (identifier) @local.definition)))
(trait_item body: (declaration_list (function_signature_item name: (identifier) @local.definition)))
(use_declaration argument: (identifier) @local.definition)
(use_declaration argument: (scoped_identifier name: (identifier) @local.definition))
(use_declaration argument: (use_as_clause alias: (identifier) @local.definition))
(use_declaration argument: (scoped_use_list list: (use_list (identifier) @local.definition)))
(use_declaration argument: (scoped_use_list list: (use_list (scoped_identifier name: (identifier) @local.definition))))
(use_declaration argument: (scoped_use_list list: (use_list (use_as_clause alias: (identifier) @local.definition))))
(struct_item body: (field_declaration_list (field_declaration name: (field_identifier) @local.definition.field)))
(union_item body: (field_declaration_list (field_declaration name: (field_identifier) @local.definition.field)))
(enum_item body: (enum_variant_list (enum_variant name: (identifier) @local.definition.field)))

; ---- references -----------------------------------------------------------------------------

(identifier) @local.reference
(type_identifier) @local.reference
