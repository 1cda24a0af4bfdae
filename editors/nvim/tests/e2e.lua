-- End-to-end tests of the plugin in real Neovim against the real server, driven by
-- tests/test_nvim.py: each case records what happened in $DCODER_TEST_DIR/results.json and the
-- Python side checks it. Run: DCODER_TEST_DIR=... nvim --headless -u NONE -i NONE -n -c "luafile editors/nvim/tests/e2e.lua"
local dir = assert(os.getenv("DCODER_TEST_DIR"), "DCODER_TEST_DIR is not set")
local model = os.getenv("DCODER_TEST_MODEL") or ""
local python = os.getenv("DCODER_PYTHON") or "python3"
local plugin = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h")

vim.opt.rtp:prepend(plugin)
vim.cmd("filetype on")
vim.cmd("runtime! plugin/dcoder.lua")

local dcoder = require("dcoder")
local ghost = require("dcoder.ghost")
local preview = require("dcoder.preview")

-- The sample file the Python, Neovim and VS Code tests share (the tests run in the repository root).
local CODE = vim.fn.readfile("tests/data/sample.py")
local FAST = { steps = 8, maxTokens = vim.NIL }
local SLOW = { steps = 256, maxTokens = 256 } -- 256 forward passes: time for the user to type

local results = {}
local previews = {}

dcoder.setup({
  cmd = { python, "-m", "dcoder", "lsp", "--stdio" },
  model = model ~= "" and model or nil,
  settings = vim.tbl_extend("force", { provider = "cpu" }, FAST),
  inline = { debounce = 30 },
  on_preview = function(bufnr, params)
    table.insert(previews, { bufnr = bufnr, params = params })
  end,
})

local function wait(ms, condition, what)
  if not vim.wait(ms, condition, 10) then
    error("never happened: " .. what, 2)
  end
end

local function text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false), "\n") .. "\n"
end

local function open(name, lines)
  local path = dir .. "/" .. name
  vim.fn.writefile(lines, path)
  vim.cmd("edit " .. vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  wait(60000, function()
    return dcoder.client_id and vim.lsp.buf_is_attached(bufnr, dcoder.client_id) and dcoder.status ~= nil
  end, "the server attached and initialized")
  return bufnr
end

local function keys(k)
  return vim.api.nvim_replace_termcodes(k, true, false, true)
end

--- Run ``fn`` in Insert mode; inside it, feed(k) types keys (through mappings) and lets Neovim
--- process them before going on.
local function insert_mode(fn)
  local co, failure
  local function resume()
    local ok, err = coroutine.resume(co)
    if not ok then
      failure = debug.traceback(co, err)
    end
    if coroutine.status(co) == "dead" then
      vim.api.nvim_feedkeys(keys("<Esc>"), "n", false)
    end
  end
  local function feed(k)
    vim.api.nvim_feedkeys(keys(k), "m", false)
    vim.defer_fn(resume, 20)
    coroutine.yield()
  end
  co = coroutine.create(function()
    fn(feed)
  end)
  vim.defer_fn(resume, 0)
  vim.api.nvim_feedkeys("i", "nx!", false)
  if failure then
    error(failure, 0)
  end
end

local function say(message)
  io.stderr:write(message .. "\n")
end

local function case(name, fn)
  say("case " .. name)
  local record = {}
  results[name] = record
  local ok, err = xpcall(function()
    fn(record)
  end, debug.traceback)
  record.ok = ok
  record.error = not ok and err or nil
  say(ok and "  ok" or ("  failed: " .. err))
  vim.cmd("silent! %bwipeout!")
end

case("refine_selection", function(r)
  local bufnr = open("refine.py", CODE)
  r.before = text(bufnr)
  vim.api.nvim_win_set_cursor(0, { 3, 11 })
  vim.cmd("normal! v4l" .. keys("<Esc>")) -- "a + b"
  previews = {}
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  vim.cmd("'<,'>DcoderRefine")
  wait(60000, function()
    return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
  end, "the refine edit applied")
  wait(10000, function()
    return #previews > 0 and previews[#previews].params.done
  end, "the final preview")
  r.after = text(bufnr)
  r.frames = vim.tbl_map(function(p)
    return p.params.spans[1] and p.params.spans[1].text or vim.NIL
  end, vim.tbl_filter(function(p)
    return not p.params.done
  end, previews))
  r.drawn = preview.frames[bufnr] or 0
  -- a text recording of the preview, frame by frame
  local log = {}
  for i, frame in ipairs(r.frames) do
    table.insert(log, ("--- step %d"):format(i))
    vim.list_extend(log, vim.split(frame, "\n", { plain = true }))
  end
  vim.fn.writefile(log, dir .. "/preview.log")
  r.marks_left = #vim.api.nvim_buf_get_extmarks(bufnr, preview.ns, 0, -1, {})
  r.start = { line = 2, character = 11 }
  r["end"] = { line = 2, character = 16 }
end)

case("refine_lines", function(r)
  local bufnr = open("lines.py", CODE)
  r.before = text(bufnr)
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  vim.cmd("11,12DcoderRefine")
  wait(60000, function()
    return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
  end, "the refine edit applied")
  r.after = text(bufnr)
end)

case("inline_accept", function(r)
  local bufnr = open("inline.py", CODE)
  r.before = text(bufnr)
  insert_mode(function(feed)
    -- the random test model offers nothing at some places: try a few
    for _, at in ipairs({ { 3, 4 }, { 12, 8 }, { 5, 0 }, { 7, 13 } }) do
      vim.api.nvim_win_set_cursor(0, at)
      feed("<M-\\>")
      wait(30000, function()
        return not ghost.busy(bufnr)
      end, "the inline completion answered")
      if ghost.get(bufnr) then
        r.row, r.col, r.ghost = at[1] - 1, at[2], ghost.get(bufnr).text
        r.marks = #vim.api.nvim_buf_get_extmarks(bufnr, ghost.ns, 0, -1, {})
        break
      end
    end
    assert(r.ghost, "no ghost text anywhere")
    feed("<Tab>")
    wait(1000, function()
      return ghost.get(bufnr) == nil
    end, "the ghost text accepted")
    r.after = text(bufnr)
    local cur = vim.api.nvim_win_get_cursor(0)
    r.cursor = { cur[1] - 1, cur[2] }
    r.marks_left = #vim.api.nvim_buf_get_extmarks(bufnr, ghost.ns, 0, -1, {})
    -- typing asks again by itself (the debounce has passed once the request is out)
    feed("x")
    wait(5000, function()
      return ghost.busy(bufnr) or ghost.get(bufnr) ~= nil
    end, "a completion asked for after typing")
    r.auto = true
  end)
end)

case("inline_stale", function(r)
  local bufnr = open("stale_inline.py", CODE)
  local function ask(at)
    vim.api.nvim_win_set_cursor(0, at)
    assert(dcoder.complete(), "no request sent")
  end
  local function answered()
    wait(30000, function()
      return not ghost.busy(bufnr)
    end, "the inline completion answered")
  end
  -- find a place where the model offers something for this text
  for _, at in ipairs({ { 3, 4 }, { 12, 8 }, { 5, 0 }, { 7, 13 } }) do
    ask(at)
    answered()
    if ghost.get(bufnr) then
      r.at, r.offered = at, ghost.get(bufnr).text
      break
    end
  end
  assert(r.offered, "no completion anywhere")
  ghost.dismiss(bufnr)
  -- Ask again, and type while the server works: Neovim is held (as if busy) long enough for the
  -- answer to arrive before it has even sent the change, so only the client can drop it.
  ask(r.at)
  local uv = vim.uv or vim.loop
  uv.sleep(1500)
  vim.api.nvim_buf_set_text(bufnr, r.at[1] - 1, r.at[2], r.at[1] - 1, r.at[2], { "z" })
  vim.api.nvim_win_set_cursor(0, r.at)
  answered()
  r.shown = ghost.get(bufnr) ~= nil
  r.marks = #vim.api.nvim_buf_get_extmarks(bufnr, ghost.ns, 0, -1, {})
end)

case("refine_stale", function(r)
  local bufnr = open("stale.py", CODE)
  dcoder.configure(SLOW)
  local done
  previews = {}
  assert(dcoder.refine({ line1 = 10, line2 = 12, range = 0 }, false, function(err, result)
    done = { err = err, result = result }
  end), "no request sent")
  wait(30000, function()
    return #previews > 0
  end, "the refine started")
  vim.api.nvim_buf_set_lines(bufnr, 0, 0, false, { "# typed while the model ran" })
  r.typed = text(bufnr)
  wait(60000, function()
    return done ~= nil
  end, "the refine answered")
  r.after = text(bufnr)
  r.error_code = done.err and done.err.code or vim.NIL
  r.applied = done.result and done.result.applied or false
  dcoder.configure(FAST)
end)

case("apply_edit_guard", function(r)
  local bufnr = open("guard.py", CODE)
  local client = dcoder.client()
  local handler = client.handlers["workspace/applyEdit"]
  local uri = vim.uri_from_bufnr(bufnr)
  local version = vim.lsp.util.buf_versions[bufnr]
  local function edit(v)
    local at = { line = 0, character = 0 }
    return { edit = { documentChanges = { {
      textDocument = { uri = uri, version = v },
      edits = { { range = { start = at, ["end"] = at }, newText = "# inserted\n" } },
    } } } }
  end
  local ctx = { client_id = client.id, method = "workspace/applyEdit" }
  r.stale = handler(nil, edit(version - 1), ctx)
  r.after_stale = text(bufnr)
  r.current = handler(nil, edit(version), ctx)
  r.after_current = text(bufnr)
  r.before = table.concat(CODE, "\n") .. "\n"
end)

case("status", function(r)
  open("status.py", CODE)
  r.status = dcoder.status
  r.statusline = dcoder.statusline()
end)

local out = assert(io.open(dir .. "/results.json", "w"))
out:write(vim.fn.json_encode(results))
out:close()
vim.cmd("qa!")
