; Names in scope in C, in the tree-sitter locals conventions (see grammars/README.md, "Names in
; scope"); cpp/locals.scm inherits these patterns, so they name only node types both grammars
; have. A name is visible in its whole scope (a block, a function, or the `for` that declares it).
; A struct's or union's members are fields of the file: `c->size` reaches them from anywhere.
; Declarators nest (`char *name[4]`): the patterns below take a name directly, behind one
; pointer, or as an array, which covers most declarations.

; ---- scopes ---------------------------------------------------------------------------------

(translation_unit) @local.scope
(function_definition) @local.scope
(compound_statement) @local.scope
(for_statement) @local.scope
; a prototype's parameters name nothing outside it
(declaration declarator: (function_declarator) @local.scope)
(declaration declarator: (pointer_declarator declarator: (function_declarator) @local.scope))
(field_declaration declarator: (function_declarator) @local.scope)
(field_declaration declarator: (pointer_declarator declarator: (function_declarator) @local.scope))
(type_definition declarator: (function_declarator) @local.scope)
(parameter_declaration declarator: (function_declarator) @local.scope)

; ---- definitions ----------------------------------------------------------------------------

(function_declarator declarator: (identifier) @local.definition)

(parameter_declaration declarator: [
  (identifier) @local.definition
  (pointer_declarator declarator: (identifier) @local.definition)
  (pointer_declarator declarator: (pointer_declarator declarator: (identifier) @local.definition))
  (array_declarator declarator: (identifier) @local.definition)
])

(declaration declarator: [
  (identifier) @local.definition
  (pointer_declarator declarator: (identifier) @local.definition)
  (array_declarator declarator: (identifier) @local.definition)
  (init_declarator declarator: [
    (identifier) @local.definition
    (pointer_declarator declarator: (identifier) @local.definition)
    (array_declarator declarator: (identifier) @local.definition)
  ])
])

(type_definition declarator: (type_identifier) @local.definition)
(type_definition declarator: (pointer_declarator declarator: (type_identifier) @local.definition))
(struct_specifier name: (type_identifier) @local.definition)
(union_specifier name: (type_identifier) @local.definition)
(enum_specifier name: (type_identifier) @local.definition)
(preproc_def name: (identifier) @local.definition)
(preproc_function_def name: (identifier) @local.definition)
(labeled_statement label: (statement_identifier) @local.definition)

; rooted at the declaration: module-level names are searched only this deep (dcoder.syntax.scope)
(function_definition declarator: (function_declarator declarator: (identifier) @local.definition))
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @local.definition)))
(declaration declarator: (function_declarator declarator: (identifier) @local.definition))
(declaration declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @local.definition)))
(enum_specifier body: (enumerator_list (enumerator name: (identifier) @local.definition)))  ; plain names in C
(struct_specifier body: (field_declaration_list (field_declaration declarator: [
  (field_identifier) @local.definition.field
  (pointer_declarator declarator: (field_identifier) @local.definition.field)
  (array_declarator declarator: (field_identifier) @local.definition.field)
])))
(union_specifier body: (field_declaration_list (field_declaration declarator: [
  (field_identifier) @local.definition.field
  (pointer_declarator declarator: (field_identifier) @local.definition.field)
  (array_declarator declarator: (field_identifier) @local.definition.field)
])))

; ---- references -----------------------------------------------------------------------------

(identifier) @local.reference
(type_identifier) @local.reference
