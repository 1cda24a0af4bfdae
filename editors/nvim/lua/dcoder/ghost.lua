-- Inline completions drawn as ghost text (extmarks): request, show, accept, accept a line, dismiss.
-- A completion is shown and accepted only while the buffer is exactly as it was when it was asked
-- for (same changedtick, cursor in place); anything else drops it.
local compat = require("dcoder.compat")
local position = require("dcoder.position")

local M = {}

M.ns = vim.api.nvim_create_namespace("dcoder_ghost")
local pending = {} -- bufnr -> { client, id }
local shown = {} -- bufnr -> { row, col, tick, text }

local function tick(bufnr)
  return vim.api.nvim_buf_get_changedtick(bufnr)
end

local function cursor_at(bufnr, row, col)
  if vim.api.nvim_get_current_buf() ~= bufnr then
    return false
  end
  local cur = vim.api.nvim_win_get_cursor(0)
  return cur[1] - 1 == row and cur[2] == col
end

local function split(text)
  return vim.split(text, "\n", { plain = true })
end

function M.clear(bufnr)
  shown[bufnr] = nil
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

local function cancel(bufnr)
  local p = pending[bufnr]
  pending[bufnr] = nil
  if p then
    compat.call(p.client, "cancel_request", p.id)
  end
end

function M.dismiss(bufnr)
  cancel(bufnr)
  M.clear(bufnr)
end

--- The ghost text shown in the buffer, if any (for statuslines and tests).
function M.get(bufnr)
  return shown[bufnr]
end

--- Whether a completion request for the buffer is on its way.
function M.busy(bufnr)
  return pending[bufnr] ~= nil
end

local function render(bufnr, ghost)
  vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  local lines = split(ghost.text)
  local line = vim.api.nvim_buf_get_lines(bufnr, ghost.row, ghost.row + 1, false)[1] or ""
  local opts = { virt_text = { { lines[1], "DcoderGhost" } }, hl_mode = "combine" }
  if vim.fn.has("nvim-0.10") == 1 then
    opts.virt_text_pos = "inline"
  else
    -- Before 0.10 virtual text cannot push the rest of the line aside: draw over the empty end
    -- of the line, or after it when code follows the cursor.
    opts.virt_text_pos = ghost.col >= #line and "overlay" or "eol"
  end
  if #lines > 1 then
    opts.virt_lines = vim.tbl_map(function(l)
      return { { l, "DcoderGhost" } }
    end, vim.list_slice(lines, 2))
  end
  vim.api.nvim_buf_set_extmark(bufnr, M.ns, ghost.row, ghost.col, opts)
end

local function show(bufnr, ghost)
  shown[bufnr] = ghost
  render(bufnr, ghost)
end

--- Ask the server for a completion at the cursor of the current window.
function M.request(client, bufnr, automatic)
  M.dismiss(bufnr)
  local cur = vim.api.nvim_win_get_cursor(0)
  local row, col = cur[1] - 1, cur[2]
  local at = position.to_lsp(bufnr, row, col, client.offset_encoding)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = at,
    context = { triggerKind = automatic and 2 or 1 },
  }
  local asked = tick(bufnr)
  local id
  local ok, request_id = compat.call(client, "request", "textDocument/inlineCompletion", params, function(err, result)
    if pending[bufnr] and pending[bufnr].id == id then
      pending[bufnr] = nil
    end
    if err or not result or not vim.api.nvim_buf_is_valid(bufnr) then
      return
    end
    -- Typed since, or moved away: this completion is for a text the user no longer has.
    if tick(bufnr) ~= asked or not cursor_at(bufnr, row, col) then
      return
    end
    local item = (result.items or result)[1]
    if not item then
      return
    end
    local text = type(item.insertText) == "table" and item.insertText.value or item.insertText
    local r = item.range
    if type(text) ~= "string" or text == "" or (r and not vim.deep_equal({ r.start, r["end"] }, { at, at })) then
      return
    end
    show(bufnr, { row = row, col = col, tick = asked, text = text:gsub("\r\n", "\n") })
  end, bufnr)
  if ok then
    id = request_id
    pending[bufnr] = { client = client, id = request_id }
  end
  return ok
end

--- Insert the ghost text (all of it, or up to the end of its first line); false if none is shown
--- for the buffer as it is now.
function M.accept(bufnr, line_only)
  local g = shown[bufnr]
  if not g or tick(bufnr) ~= g.tick or not cursor_at(bufnr, g.row, g.col) then
    M.clear(bufnr)
    return false
  end
  local piece, rest = g.text, ""
  if line_only then
    local nl = g.text:find("\n", 2, true)
    if nl then
      piece, rest = g.text:sub(1, nl - 1), g.text:sub(nl)
    end
  end
  M.clear(bufnr)
  local lines = split(piece)
  vim.api.nvim_buf_set_text(bufnr, g.row, g.col, g.row, g.col, lines)
  local row = g.row + #lines - 1
  local col = (#lines == 1 and g.col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
  if rest ~= "" then
    show(bufnr, { row = row, col = col, tick = tick(bufnr), text = rest })
  end
  return true
end

--- After an edit: keep the ghost text if it belongs to this very text, else drop it.
function M.changed(bufnr)
  local g = shown[bufnr]
  if g and g.tick == tick(bufnr) then
    return true
  end
  M.dismiss(bufnr)
  return false
end

function M.moved(bufnr)
  local g = shown[bufnr]
  if g and not cursor_at(bufnr, g.row, g.col) then
    M.dismiss(bufnr)
  end
end

return M
