-- nib.nvim: inline completions (ghost text) and code review from `nib serve`.
--
--   require("nib").setup({ model = "~/models/nib-small" })
--
-- See `:help nib`.
local config = require("nib.config")
local inline = require("nib.inline")
local lsp_client = require("nib.client")

local M = {}

local has_011 = lsp_client.has_011
local group = vim.api.nvim_create_augroup("nib", { clear = true })

-- Last known server status: { state = "starting"|"loading"|"ready"|"error"|"stopped", model, device, message }
M.status = { state = "stopped" }

local function clients()
  return vim.lsp.get_clients({ name = "nib" })
end

--- The LSP client configuration (usable with vim.lsp.start).
function M.lsp_config()
  local o = config.options
  local cmd = { vim.fn.expand(o.server_path), "serve", "--stdio" }
  vim.list_extend(cmd, o.server_args or {})
  local settings = config.server_settings()
  return {
    name = "nib",
    cmd = cmd,
    cmd_env = o.server_env,
    filetypes = o.filetypes,
    root_markers = o.root_markers,
    init_options = settings,
    settings = settings,
    -- The plugin shows inline completions itself; saying so tells the server
    -- to offer ghost text only, not also completion-menu items (whose
    -- requests would supersede the inline ones).
    capabilities = vim.tbl_deep_extend("force", vim.lsp.protocol.make_client_capabilities(), {
      textDocument = { inlineCompletion = { dynamicRegistration = false } },
    }),
    on_init = function()
      M.status = { state = "loading" }
      vim.defer_fn(M.refresh_status, 200)
    end,
    on_exit = function(code)
      M.status = { state = code == 0 and "stopped" or "error", message = "server exited with code " .. code }
    end,
  }
end

local function start(bufnr)
  local cfg = M.lsp_config()
  cfg.root_dir = vim.fs.root(bufnr, config.options.root_markers)
  vim.lsp.start(cfg, { bufnr = bufnr })
end

local function format_status(s)
  local parts = { "nib: " .. (s.state or "unknown") }
  if s.model then
    parts[#parts + 1] = "model " .. s.model
  end
  if s.device then
    parts[#parts + 1] = "on " .. s.device
  end
  local line = table.concat(parts, ", ")
  if s.message and s.message ~= "" then
    line = line .. " (" .. s.message .. ")"
  end
  if not config.options.inline.enabled then
    line = line .. " [completions off]"
  end
  return line
end

--- Asks the server for `nib/status`; calls cb(status) when it answers.
function M.refresh_status(cb)
  local client = clients()[1]
  if not client then
    M.status = { state = "stopped" }
    if cb then
      cb(M.status)
    end
    return
  end
  lsp_client.request(client, "nib/status", vim.empty_dict(), function(err, result)
    if err then
      M.status = { state = "error", message = err.message }
    elseif result then
      M.status = result
    end
    if M.status.state == "loading" then
      vim.defer_fn(M.refresh_status, 1000)
    end
    if cb then
      cb(M.status)
    end
  end)
end

--- A short text for statuslines: "nib: ready", "nib: loading 40%" …
function M.statusline()
  local s = M.status
  if s.state == "ready" then
    return "nib" .. (s.device and (" " .. s.device) or "")
  end
  return "nib: " .. (s.state or "?") .. (s.percentage and (" " .. s.percentage .. "%") or "")
end

local function push_settings()
  for _, client in ipairs(clients()) do
    client.settings = config.server_settings()
    lsp_client.notify(client, "workspace/didChangeConfiguration", { settings = client.settings })
  end
end

function M.toggle()
  config.options.inline.enabled = not config.options.inline.enabled
  inline.dismiss()
  push_settings()
  vim.notify("nib: inline completions " .. (config.options.inline.enabled and "on" or "off"))
end

--- Asks the server to review the current file (`nib.reviewFile`); its
--- findings arrive as diagnostics.
function M.review(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = inline.client(bufnr)
  if not client then
    vim.notify("nib: no server attached to this buffer", vim.log.levels.WARN)
    return
  end
  local params = { command = "nib.reviewFile", arguments = { vim.uri_from_bufnr(bufnr) } }
  lsp_client.request(client, "workspace/executeCommand", params, function(err, result)
    if err then
      vim.notify("nib: review failed: " .. (err.message or ""), vim.log.levels.ERROR)
    elseif type(result) == "table" and result.state == "published" then
      local n = result.findings or 0
      vim.notify(("nib: review found %d issue%s"):format(n, n == 1 and "" or "s"))
    end
  end, bufnr)
end

function M.restart()
  local bufs = {}
  for _, client in ipairs(clients()) do
    for b in pairs(client.attached_buffers or {}) do
      bufs[#bufs + 1] = b
    end
    if has_011 then
      client:stop()
    else
      client.stop()
    end
  end
  inline.clear()
  local function again(tries)
    if #clients() > 0 and tries > 0 then
      return vim.defer_fn(function()
        again(tries - 1)
      end, 100)
    end
    for _, b in ipairs(bufs) do
      if vim.api.nvim_buf_is_valid(b) then
        start(b)
      end
    end
  end
  again(50)
end

--- Whether a completion menu shows: Neovim's own, nvim-cmp's or blink.cmp's.
--- A key shared with the menu then belongs to the menu.
function M.menu_visible()
  if vim.fn.pumvisible() == 1 then
    return true
  end
  local cmp = package.loaded["cmp"]
  if cmp and cmp.visible and cmp.visible() then
    return true
  end
  local blink = package.loaded["blink.cmp"]
  return blink ~= nil and blink.is_visible ~= nil and blink.is_visible() == true
end

local function map_accept(bufnr, lhs, kind)
  -- Remember what the key did before (a global mapping, not one of this
  -- buffer's), to fall back to it when no suggestion shows.
  local prev = vim.fn.maparg(lhs, "i", false, true)
  if prev and (prev.buffer == 1 or vim.tbl_isempty(prev)) then
    prev = nil
  end
  M._fallbacks = M._fallbacks or {}
  M._fallbacks[lhs] = prev
  local accept_cmd = string.format("<Cmd>lua require('nib.inline').accept(%q)<CR>", kind)
  vim.keymap.set("i", lhs, function()
    if inline.visible() and not M.menu_visible() then
      return accept_cmd
    end
    if not prev then
      return lhs
    end
    if prev.expr == 1 then
      local keys = prev.callback and prev.callback() or vim.api.nvim_eval(prev.rhs)
      if prev.callback and prev.replace_keycodes ~= 1 then
        -- keys are already termcodes; turn them back into a form expr mappings accept
        return vim.fn.keytrans(keys)
      end
      return keys
    end
    if prev.callback then
      return string.format("<Cmd>lua require('nib')._fallbacks[%q].callback()<CR>", lhs)
    end
    if prev.noremap == 1 then
      return prev.rhs
    end
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(prev.rhs, true, true, true), "m", false)
    return ""
  end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = "nib: accept suggestion (" .. kind .. ")" })
end

--- The keys the user asked for, in one buffer nib is attached to.
local function set_keymaps(bufnr)
  local k = config.options.keymaps or {}
  if config.provider() ~= "nib" then
    return -- the built-in client has its own keys (vim.lsp.inline_completion.get())
  end
  if k.accept then
    map_accept(bufnr, k.accept, "all")
  end
  if k.accept_word then
    map_accept(bufnr, k.accept_word, "word")
  end
  if k.accept_line then
    map_accept(bufnr, k.accept_line, "line")
  end
  if k.dismiss then
    vim.keymap.set("i", k.dismiss, function()
      if inline.visible() then
        inline.dismiss()
        return ""
      end
      return k.dismiss
    end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = "nib: dismiss suggestion" })
  end
  if k.next then
    vim.keymap.set("i", k.next, function()
      inline.request(1)
    end, { buffer = bufnr, desc = "nib: suggest now" })
  end
end

--- One source of ghost text per client: Neovim 0.12's built-in inline
--- completion for nib's client when the user chose it, else off for nib's
--- client (the plugin draws its own).
local function choose_inline_provider(client_id)
  if not config.has_builtin_inline() then
    return
  end
  pcall(vim.lsp.inline_completion.enable, config.provider() == "builtin", { client_id = client_id })
end

local function set_autocmds()
  local function attached(args)
    return inline.client(args.buf) ~= nil
  end
  vim.api.nvim_create_autocmd({ "TextChangedI", "TextChangedP" }, {
    group = group,
    callback = function(args)
      if config.provider() == "nib" and attached(args) then
        inline.on_text_changed()
      end
    end,
  })
  vim.api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == "nib" then
        set_keymaps(args.buf)
        choose_inline_provider(client.id)
      end
    end,
  })
  vim.api.nvim_create_autocmd("CursorMovedI", { group = group, callback = inline.on_cursor_moved })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, { group = group, callback = inline.on_insert_leave })
  vim.api.nvim_create_autocmd("LspProgress", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if not client or client.name ~= "nib" then
        return
      end
      local value = args.data.params and args.data.params.value or {}
      if value.kind == "end" then
        M.refresh_status()
      elseif M.status.state ~= "ready" then
        M.status = { state = "loading", message = value.message or value.title, percentage = value.percentage }
      end
    end,
  })
end

local function set_commands()
  vim.api.nvim_create_user_command("NibStatus", function()
    M.refresh_status(function(s)
      vim.notify(format_status(s))
    end)
  end, { desc = "nib: show the server's status" })
  vim.api.nvim_create_user_command("NibToggle", M.toggle, { desc = "nib: inline completions on/off" })
  vim.api.nvim_create_user_command("NibReview", function()
    M.review()
  end, { desc = "nib: review the current file" })
  vim.api.nvim_create_user_command("NibRestart", M.restart, { desc = "nib: restart the server" })
  vim.api.nvim_create_user_command("NibLog", function()
    vim.cmd.split(vim.lsp.get_log_path())
  end, { desc = "nib: open the LSP log (holds the server's stderr)" })
end

function M.setup(opts)
  config.setup(opts)
  vim.api.nvim_set_hl(0, "NibSuggestion", { link = "Comment", default = true })
  vim.api.nvim_clear_autocmds({ group = group })
  set_autocmds()
  set_commands()
  if config.options.inline.provider == "builtin" and not config.has_builtin_inline() then
    vim.notify(
      "nib: inline.provider = \"builtin\" needs Neovim 0.12 (vim.lsp.inline_completion); nib.nvim draws ghost text itself",
      vim.log.levels.WARN
    )
  end
  if has_011 and vim.lsp.config and vim.lsp.enable then
    vim.lsp.config("nib", M.lsp_config())
    vim.lsp.enable("nib")
  else
    vim.api.nvim_create_autocmd("FileType", {
      group = group,
      pattern = config.options.filetypes,
      callback = function(args)
        start(args.buf)
      end,
    })
    -- Buffers already open when setup() runs.
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(b) and vim.tbl_contains(config.options.filetypes, vim.bo[b].filetype) then
        start(b)
      end
    end
  end
end

-- Re-exports for keymaps and statuslines.
M.accept = inline.accept
M.dismiss = inline.dismiss
M.visible = inline.visible
M.suggestion = inline.suggestion
M.request = inline.request

return M
