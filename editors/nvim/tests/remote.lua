-- The plugin with a remote model: setup({ server, server_token }) must reach the language server,
-- which then sends its runs to the `dcoder serve` at $DCODER_TEST_SERVER. Driven by
-- tests/test_nvim_remote.py, which starts that server and checks results.json.
local dir = assert(os.getenv("DCODER_TEST_DIR"), "DCODER_TEST_DIR is not set")
local python = os.getenv("DCODER_PYTHON") or "python3"
local plugin = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h")

vim.opt.rtp:prepend(plugin)
vim.cmd("filetype on")
vim.cmd("runtime! plugin/dcoder.lua")

local dcoder = require("dcoder")
local previews = {}
local r = {}

local function wait(ms, condition, what)
  if not vim.wait(ms, condition, 10) then
    error("never happened: " .. what, 2)
  end
end

local ok, err = xpcall(function()
  dcoder.setup({
    cmd = { python, "-m", "dcoder", "lsp", "--stdio" },
    server = assert(os.getenv("DCODER_TEST_SERVER")),
    server_token = assert(os.getenv("DCODER_TEST_TOKEN")),
    settings = { steps = 4, maxTokens = 4 },
    inline = { auto = false },
    on_preview = function(_, params)
      table.insert(previews, params)
    end,
  })
  local path = dir .. "/remote.py"
  vim.fn.writefile(vim.fn.readfile("tests/data/sample.py"), path)
  vim.cmd("edit " .. vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  wait(60000, function()
    return dcoder.client_id and vim.lsp.buf_is_attached(bufnr, dcoder.client_id) and dcoder.status ~= nil
  end, "the server attached and initialized")
  r.status = dcoder.status
  r.before = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  vim.cmd("3,3DcoderRefine")
  wait(60000, function()
    return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
  end, "the refine edit applied")
  wait(10000, function()
    return #previews > 0 and previews[#previews].done
  end, "the final preview")
  r.after = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  r.frames = #previews - 1
end, debug.traceback)
r.ok, r.error = ok, not ok and err or nil

local out = assert(io.open(dir .. "/results.json", "w"))
out:write(vim.fn.json_encode(r))
out:close()
vim.cmd("qa!")
