; Names in scope in Ruby, in the tree-sitter locals conventions (see grammars/README.md, "Names in
; scope"). A name is visible in its whole scope (a method, a block, a lambda, a class or module
; body). Instance variables (`@size`) and `attr_reader :size` are fields of their class; the
; sampler sees them as the word `size` (dcoder.syntax.scope drops the sigil).

; ---- scopes ---------------------------------------------------------------------------------

(program) @local.scope
(class) @local.scope
(module) @local.scope
(singleton_class) @local.scope
(method) @local.scope
(singleton_method) @local.scope
(block) @local.scope
(do_block) @local.scope
(lambda) @local.scope

; ---- definitions ----------------------------------------------------------------------------

(method name: (identifier) @local.definition)
(singleton_method name: (identifier) @local.definition)
(class name: (constant) @local.definition)
(class name: (scope_resolution name: (constant) @local.definition))
(module name: (constant) @local.definition)
(module name: (scope_resolution name: (constant) @local.definition))

(method_parameters (identifier) @local.definition)
(lambda_parameters (identifier) @local.definition)
(block_parameters (identifier) @local.definition)
(splat_parameter name: (identifier) @local.definition)
(hash_splat_parameter name: (identifier) @local.definition)
(block_parameter name: (identifier) @local.definition)
(optional_parameter name: (identifier) @local.definition)
(keyword_parameter name: (identifier) @local.definition)
(destructured_parameter (identifier) @local.definition)

(assignment left: (identifier) @local.definition)
(assignment left: (constant) @local.definition)
(assignment left: (left_assignment_list (identifier) @local.definition))
(operator_assignment left: (identifier) @local.definition)
(for pattern: (identifier) @local.definition)
(exception_variable (identifier) @local.definition)

(assignment left: (instance_variable) @local.definition.field)
(assignment left: (left_assignment_list (instance_variable) @local.definition.field))
(operator_assignment left: (instance_variable) @local.definition.field)
(assignment left: (class_variable) @local.definition.field)
((call
   method: (identifier) @_accessor
   arguments: (argument_list (simple_symbol) @local.definition.field))
 (#any-of? @_accessor "attr_reader" "attr_writer" "attr_accessor"))

; ---- references -----------------------------------------------------------------------------

(identifier) @local.reference
(constant) @local.reference
