-- LSP positions (line, character in the negotiated encoding) <-> buffer (row, byte column).
local M = {}

local function line_text(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

--- Byte column -> LSP character.
function M.character(line, col, encoding)
  col = math.min(col, #line)
  if encoding == "utf-8" then
    return col
  end
  local utf32, utf16 = vim.str_utfindex(line, col)
  return encoding == "utf-32" and utf32 or utf16
end

--- LSP character -> byte column (clamped to the line).
function M.byte(line, character, encoding)
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local ok, col = pcall(vim.str_byteindex, line, character, encoding ~= "utf-32")
  return ok and col or #line
end

function M.to_lsp(bufnr, row, col, encoding)
  return { line = row, character = M.character(line_text(bufnr, row), col, encoding) }
end

--- An LSP position as (row, byte column), clamped to the buffer.
function M.from_lsp(bufnr, pos, encoding)
  local last = vim.api.nvim_buf_line_count(bufnr) - 1
  if pos.line > last then
    return last, #line_text(bufnr, last)
  end
  return pos.line, M.byte(line_text(bufnr, pos.line), pos.character, encoding)
end

return M
