-- Calls on an LSP client that work on Neovim 0.10 (functions taking the
-- client) and 0.11+ (methods).
local M = {}

M.has_011 = vim.fn.has("nvim-0.11") == 1

function M.request(client, method, params, handler, bufnr)
  if M.has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.notify(client, method, params)
  if M.has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel(client, id)
  if M.has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

return M
