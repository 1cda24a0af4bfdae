-- User commands; the server starts with require("dcoder").setup{}.
if vim.g.loaded_dcoder then
  return
end
vim.g.loaded_dcoder = true

local function dcoder()
  local m = require("dcoder")
  if not m.config then
    vim.notify("dcoder: call require('dcoder').setup{} first", vim.log.levels.WARN)
    return nil
  end
  return m
end

-- Region names of the Python grammar (grammars/python/regions.scm), for completion only: the
-- server checks the name.
local REGIONS = {
  "function.inner", "function.outer", "class.inner", "class.outer", "call.inner", "call.outer",
  "return.value", "assignment.rhs", "block", "statement", "condition", "parameters", "parameter",
  "lambda", "comprehension", "decorator", "docstring", "string", "import",
}

local command = vim.api.nvim_create_user_command

command("DcoderRefine", function(opts)
  local m = dcoder()
  if m then
    m.refine(opts, opts.bang)
  end
end, { range = true, bang = true, desc = "dcoder: regenerate the selected code (! keeps confident tokens)" })

command("DcoderFill", function(opts)
  local m = dcoder()
  if m then
    m.fill(opts.args)
  end
end, {
  nargs = "?",
  complete = function(lead)
    return vim.tbl_filter(function(r)
      return r:sub(1, #lead) == lead
    end, REGIONS)
  end,
  desc = "dcoder: fill the syntax region at the cursor",
})

-- A command without arguments that calls one function of the module.
local function simple(name, method, desc)
  command(name, function()
    local m = dcoder()
    if m then
      m[method]()
    end
  end, { desc = desc })
end

simple("DcoderHoles", "holes", "dcoder: fill every <|mask|> hole in the buffer")
simple("DcoderToggleInline", "toggle_inline", "dcoder: turn ghost-text completions on or off")
simple("DcoderStatus", "show_status", "dcoder: model, provider and state of the server")
