-- The live denoising preview: at each step of a refine/fill, the span's old text is dimmed and its
-- partially resolved new text (masks drawn as ░) is shown below it as virtual lines.
local position = require("dcoder.position")

local M = {}

M.ns = vim.api.nvim_create_namespace("dcoder_preview")
M.frames = {} -- bufnr -> frames drawn so far

function M.clear(bufnr)
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

--- Draw one dcoder/preview notification; ``version`` is the buffer's current LSP version.
--- Returns whether a frame was drawn.
function M.show(bufnr, params, version, encoding)
  M.clear(bufnr)
  if params.done or params.version ~= version then
    return false
  end
  for _, span in ipairs(params.spans or {}) do
    local srow, scol = position.from_lsp(bufnr, span.range.start, encoding)
    local erow, ecol = position.from_lsp(bufnr, span.range["end"], encoding)
    if srow ~= erow or scol ~= ecol then
      vim.api.nvim_buf_set_extmark(bufnr, M.ns, srow, scol, { end_row = erow, end_col = ecol, hl_group = "DcoderPreviewOld" })
    end
    local lines = vim.split(span.text:gsub("\r\n", "\n"), "\n", { plain = true })
    vim.api.nvim_buf_set_extmark(bufnr, M.ns, erow, 0, {
      virt_lines = vim.tbl_map(function(l)
        return { { "▎ ", "DcoderPreviewBar" }, { l, "DcoderPreview" } }
      end, lines),
    })
  end
  M.frames[bufnr] = (M.frames[bufnr] or 0) + 1
  return true
end

return M
