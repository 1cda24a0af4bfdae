-- Differences between the Neovim versions the plugin supports (0.7 and later).
local M = {}

-- Client methods are called with ':' from 0.11 on (the '.' form is deprecated there).
local method_style = vim.fn.has("nvim-0.11") == 1

function M.call(client, name, ...)
  if method_style then
    return client[name](client, ...)
  end
  return client[name](...)
end

return M
