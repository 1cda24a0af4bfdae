-- dcoder for Neovim: starts the dcoder language server and adds ghost-text completion, refine and
-- fill commands and the live denoising preview. See :help dcoder.
local compat = require("dcoder.compat")
local ghost = require("dcoder.ghost")
local position = require("dcoder.position")
local preview = require("dcoder.preview")

local M = {}

M.defaults = {
  cmd = { "dcoder", "lsp", "--stdio" },
  model = nil, -- checkpoint or exported model folder, or a pulled hub model ORG/NAME; nil: the built-in model
  server = nil, -- URL of a `dcoder serve` that runs the model instead (no model is loaded here); nil: none
  server_token = nil, -- that server's bearer token; nil: the language server's $DCODER_TOKEN
  settings = {}, -- server settings, named as the server names them (steps, provider, preview, ...)
  filetypes = nil, -- nil: every file buffer
  root_dir = nil, -- nil: the current directory
  inline = {
    enabled = true,
    auto = true, -- ask as you type (else only with the trigger key)
    debounce = 150, -- ms of quiet typing before asking
    native = false, -- Neovim 0.12+: use vim.lsp.inline_completion instead of dcoder's ghost text
  },
  keymaps = {
    accept = "<Tab>",
    accept_line = "<M-Right>",
    dismiss = "<C-]>",
    trigger = "<M-\\>",
  },
  on_preview = nil, -- function(bufnr, params) called for each dcoder/preview notification
}

M.config = nil
M.status = nil -- the last dcoder/status notification
M.client_id = nil
local group = vim.api.nvim_create_augroup("dcoder", { clear = true })
local typing = {} -- bufnr -> generation of the last TextChangedI, for the debounce

local function notify(message, level)
  vim.notify("dcoder: " .. message, level or vim.log.levels.INFO)
end

-- Options of setup() that are server settings (option -> the server's name for it).
local SETTING_OPTIONS = { model = "model", server = "server", server_token = "serverToken" }

local function server_settings()
  local s = vim.tbl_extend("force", {}, M.config.settings)
  for option, key in pairs(SETTING_OPTIONS) do
    if M.config[option] ~= nil then
      s[key] = M.config[option]
    end
  end
  return s
end

function M.client()
  return M.client_id and vim.lsp.get_client_by_id(M.client_id) or nil
end

--- The LSP version of a buffer: the version the server was last told about.
local function version(bufnr)
  local versions = vim.lsp.util.buf_versions -- Neovim 0.11+ sends b:changedtick itself
  return versions and versions[bufnr] or vim.api.nvim_buf_get_changedtick(bufnr)
end

local function bufnr_of(uri)
  local bufnr = vim.uri_to_bufnr(uri)
  return vim.api.nvim_buf_is_loaded(bufnr) and bufnr or nil
end

-- ---- server messages ---------------------------------------------------------------------

local function on_preview(_, params, ctx)
  local bufnr = params and bufnr_of(params.uri)
  if not bufnr then
    return
  end
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  preview.show(bufnr, params, version(bufnr), client and client.offset_encoding or "utf-16")
  if M.config.on_preview then
    M.config.on_preview(bufnr, params)
  end
end

local function on_status(_, params)
  M.status = params
  vim.cmd("redrawstatus")
end

--- workspace/applyEdit, refusing any edit computed for a text the buffer no longer has.
local function on_apply_edit(_, params, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  local edit = params.edit or {}
  for _, change in ipairs(edit.documentChanges or {}) do
    local doc = change.textDocument
    if doc and doc.version ~= nil and doc.version ~= vim.NIL then
      local bufnr = bufnr_of(doc.uri)
      if not bufnr or version(bufnr) ~= doc.version then
        return { applied = false, failureReason = "the document changed since the edit was computed" }
      end
    end
  end
  local ok, err = pcall(vim.lsp.util.apply_workspace_edit, edit, client and client.offset_encoding or "utf-16")
  return { applied = ok, failureReason = not ok and tostring(err) or nil }
end

-- ---- starting the server -----------------------------------------------------------------

local function client_config()
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.textDocument.inlineCompletion = capabilities.textDocument.inlineCompletion or {}
  return {
    name = "dcoder",
    cmd = M.config.cmd,
    root_dir = M.config.root_dir or (vim.uv or vim.loop).cwd(),
    init_options = server_settings(),
    capabilities = capabilities,
    handlers = {
      ["dcoder/preview"] = on_preview,
      ["dcoder/status"] = on_status,
      ["workspace/applyEdit"] = on_apply_edit,
    },
    on_attach = function(client, bufnr)
      M.on_attach(client, bufnr)
    end,
  }
end

local function native_inline()
  return M.config.inline.native and vim.lsp.inline_completion ~= nil
end

local function map(bufnr, lhs, rhs, desc, expr)
  if lhs then
    vim.keymap.set("i", lhs, rhs, { buffer = bufnr, expr = expr, desc = desc })
  end
end

function M.on_attach(client, bufnr)
  local keys = M.config.keymaps
  if native_inline() then
    vim.lsp.inline_completion.enable(M.config.inline.enabled, { bufnr = bufnr, client_id = client.id })
    map(bufnr, keys.accept, function()
      if not vim.lsp.inline_completion.get() then
        vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys.accept, true, false, true), "n", false)
      end
    end, "dcoder: accept the completion")
    return
  end
  -- Expression mappings may not edit the buffer: the edit runs right after, and the key keeps
  -- its usual meaning when no ghost text is shown.
  local function accepting(line_only, key)
    return function()
      if not ghost.get(bufnr) then
        return key
      end
      vim.schedule(function()
        ghost.accept(bufnr, line_only)
      end)
      return ""
    end
  end
  map(bufnr, keys.accept, accepting(false, keys.accept), "dcoder: accept the completion", true)
  map(bufnr, keys.accept_line, accepting(true, keys.accept_line), "dcoder: accept a line of the completion", true)
  map(bufnr, keys.dismiss, function()
    if not ghost.get(bufnr) then
      return keys.dismiss
    end
    vim.schedule(function()
      ghost.dismiss(bufnr)
    end)
    return ""
  end, "dcoder: dismiss the completion", true)
  map(bufnr, keys.trigger, function()
    M.complete()
  end, "dcoder: ask for a completion")

  local function on(events, callback)
    vim.api.nvim_create_autocmd(events, { group = group, buffer = bufnr, callback = callback })
  end
  on("TextChangedI", function()
    if ghost.changed(bufnr) or not (M.config.inline.enabled and M.config.inline.auto) then
      return
    end
    local generation = (typing[bufnr] or 0) + 1
    typing[bufnr] = generation
    vim.defer_fn(function()
      if typing[bufnr] == generation and vim.api.nvim_get_current_buf() == bufnr and vim.fn.mode() == "i" then
        M.complete(true)
      end
    end, M.config.inline.debounce)
  end)
  on("CursorMovedI", function()
    ghost.moved(bufnr)
  end)
  on({ "InsertLeave", "BufLeave" }, function()
    typing[bufnr] = nil
    ghost.dismiss(bufnr)
  end)
end

local function wanted(bufnr)
  if vim.bo[bufnr].buftype ~= "" then
    return false
  end
  local fts = M.config.filetypes
  return fts == nil or vim.tbl_contains(fts, vim.bo[bufnr].filetype)
end

--- Attach the server to a buffer (starting it if needed).
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if vim.lsp.start then
    M.client_id = vim.lsp.start(client_config(), { bufnr = bufnr })
  else
    if not M.client() then
      M.client_id = vim.lsp.start_client(client_config())
    end
    if M.client_id then
      vim.lsp.buf_attach_client(bufnr, M.client_id)
    end
  end
  return M.client_id
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  vim.api.nvim_set_hl(0, "DcoderGhost", { link = "Comment", default = true })
  vim.api.nvim_set_hl(0, "DcoderPreview", { link = "DiffAdd", default = true })
  vim.api.nvim_set_hl(0, "DcoderPreviewBar", { link = "Special", default = true })
  vim.api.nvim_set_hl(0, "DcoderPreviewOld", { link = "DiffDelete", default = true })
  vim.api.nvim_clear_autocmds({ group = group })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    callback = function(args)
      if wanted(args.buf) then
        M.attach(args.buf)
      end
    end,
  })
  local current = vim.api.nvim_get_current_buf()
  if vim.bo[current].filetype ~= "" and wanted(current) then
    M.attach(current)
  end
end

--- Send new server settings (merged into the current ones) to the running server.
function M.configure(settings)
  for option, key in pairs(SETTING_OPTIONS) do
    if settings[key] ~= nil then
      M.config[option] = nil -- the value given now wins over setup()'s
    end
  end
  M.config.settings = vim.tbl_extend("force", M.config.settings, settings)
  local client = M.client()
  if client then
    compat.call(client, "notify", "workspace/didChangeConfiguration", { settings = { dcoder = server_settings() } })
  end
end

-- ---- commands ----------------------------------------------------------------------------

local function attached_client(bufnr)
  local client = M.client()
  if not client or not vim.lsp.buf_is_attached(bufnr, client.id) then
    notify("the language server is not attached to this buffer (call require('dcoder').setup{})", vim.log.levels.WARN)
    return nil
  end
  return client
end

--- Run a server command on the current buffer; on_done(err, result) when it has finished.
local function execute(command, args, on_done)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = attached_client(bufnr)
  if not client then
    return false
  end
  args.uri = vim.uri_from_bufnr(bufnr)
  -- Pending changes are sent before the request: this is the version the server will have.
  args.version = version(bufnr)
  local params = { command = command, arguments = { args } }
  local ok = compat.call(client, "request", "workspace/executeCommand", params, function(err, result)
    if err then
      notify(err.message or tostring(err), vim.log.levels.WARN)
    elseif result and not result.applied then
      notify(result.reason or "the edit was not applied")
    end
    if on_done then
      on_done(err, result)
    end
  end, bufnr)
  return ok
end

--- Regenerate a range of the current buffer. ``opts``: line1, line2 (1-based, inclusive) and range
--- (0, 1 or 2) as a user command gets them; a characterwise visual selection over those lines is
--- refined exactly, else whole lines. ``keep_confident`` re-masks only unlikely tokens.
function M.refine(opts, keep_confident, on_done)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = attached_client(bufnr)
  if not client then
    return false
  end
  local line1, line2 = opts.line1, opts.line2
  local srow, scol, erow, ecol = line1 - 1, 0, line2 - 1, nil
  local vs, ve = vim.fn.getpos("'<"), vim.fn.getpos("'>")
  if (opts.range or 0) > 0 and vim.fn.visualmode() == "v" and vs[2] == line1 and ve[2] == line2 then
    scol = vs[3] - 1
    local last = vim.api.nvim_buf_get_lines(bufnr, erow, erow + 1, false)[1] or ""
    -- '> marks the first byte of the last selected character: the range ends after that character
    ecol = math.min(#last, ve[3] - 1 + #vim.fn.strcharpart(last:sub(ve[3]), 0, 1))
  end
  local last = vim.api.nvim_buf_get_lines(bufnr, erow, erow + 1, false)[1] or ""
  ecol = ecol or #last
  local enc = client.offset_encoding
  local range = { start = position.to_lsp(bufnr, srow, scol, enc), ["end"] = position.to_lsp(bufnr, erow, ecol, enc) }
  return execute("dcoder.refineSelection", { range = range, keepConfident = keep_confident or nil }, on_done)
end

--- Fill the syntax region at the cursor (innermost, or the one named, e.g. "function.inner").
function M.fill(region, on_done)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = attached_client(bufnr)
  if not client then
    return false
  end
  local cur = vim.api.nvim_win_get_cursor(0)
  local args = { position = position.to_lsp(bufnr, cur[1] - 1, cur[2], client.offset_encoding) }
  if region and region ~= "" then
    args.region = region
  end
  return execute("dcoder.fillRegion", args, on_done)
end

--- Fill every <|mask|> hole of the current buffer in one run.
function M.holes(on_done)
  return execute("dcoder.fillHoles", {}, on_done)
end

--- Ask for an inline completion at the cursor.
function M.complete(automatic)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client()
  if not (client and vim.lsp.buf_is_attached(bufnr, client.id)) then
    return false
  end
  if native_inline() then
    return false
  end
  return ghost.request(client, bufnr, automatic)
end

function M.accept(line_only)
  return ghost.accept(vim.api.nvim_get_current_buf(), line_only)
end

function M.dismiss()
  ghost.dismiss(vim.api.nvim_get_current_buf())
end

function M.toggle_inline()
  M.config.inline.enabled = not M.config.inline.enabled
  if not M.config.inline.enabled then
    M.dismiss()
  end
  notify("inline completions " .. (M.config.inline.enabled and "on" or "off"))
end

--- For 'statusline': "dcoder: idle", "dcoder: busy", ...
function M.statusline()
  if not M.status then
    return M.client() and "dcoder: starting" or ""
  end
  return "dcoder: " .. M.status.state
end

function M.show_status()
  local s = M.status
  if not s then
    notify(M.client() and "starting" or "not running")
    return
  end
  local model = s.model ~= vim.NIL and s.model or "built-in"
  local message = s.message ~= vim.NIL and s.message or nil
  notify(("%s, model %s, provider %s%s"):format(s.state, model, s.provider, message and (": " .. message) or ""))
end

return M
