-- :checkhealth nib: the binary, its version, `nib doctor` (ONNX Runtime,
-- device, model), the running client, and other inline-completion sources
-- that would show a second ghost text.
local M = {}

local health = vim.health

local function run(cmd, env, timeout_ms)
  local ok, obj = pcall(function()
    return vim.system(cmd, { text = true, env = env }):wait(timeout_ms)
  end)
  if not ok then
    return nil, tostring(obj)
  end
  return obj
end

--- The program the "nib" client runs: vim.lsp.config's (setup() or the
--- user's own, Neovim 0.11+), else the plugin's `server_path`.
local function server_program(o)
  local ok, cfg = pcall(function()
    return vim.lsp.config and vim.lsp.config.nib
  end)
  if ok and type(cfg) == "table" and type(cfg.cmd) == "table" and cfg.cmd[1] then
    return cfg.cmd[1]
  end
  return vim.fn.expand(o.server_path)
end

local function check_binary(o)
  health.start("nib: server binary")
  local program = server_program(o)
  local path = vim.fn.exepath(program)
  if path == "" then
    health.error(("`%s` is not an executable on $PATH"):format(program), {
      "Install a release bundle (./install.sh puts nib in ~/.local/bin) or set `server_path` to its absolute path.",
    })
    return nil
  end
  local out, err = run({ path, "--version" }, o.server_env, 10000)
  if not out or out.code ~= 0 then
    health.error(("%s --version failed: %s"):format(path, err or vim.trim(out.stderr or "")))
    return nil
  end
  health.ok(("%s (%s)"):format(vim.trim(out.stdout), path))
  return path
end

local function check_doctor(o, path)
  health.start("nib: nib doctor")
  local cmd = { path, "doctor", "--format", "json", "--device", o.device or "auto" }
  if o.model then
    vim.list_extend(cmd, { "--model", vim.fn.expand(o.model) })
  end
  local out, err = run(cmd, o.server_env, 60000)
  if not out then
    health.error("nib doctor did not run: " .. err)
    return
  end
  local ok, report = pcall(vim.json.decode, out.stdout or "")
  if not ok or type(report) ~= "table" then
    health.error("nib doctor gave no report: " .. vim.trim(out.stderr or ""))
    return
  end
  local rt = report.runtime or {}
  if rt.error then
    health.error("ONNX Runtime: " .. rt.error, { "The release bundle carries it; from source: scripts/install-onnxruntime.sh" })
  elseif rt.library then
    health.ok(("ONNX Runtime %s (%s)"):format(rt.version or "?", rt.library))
  end
  if report.backend and report.backend ~= "onnx" then
    health.info("backend: " .. report.backend)
  end
  if type(report.device) == "string" then
    health.info(("device: %s (asked for %s)"):format(report.device, tostring(report.device_requested)))
  end
  local m = report.model or {}
  if m.error and m.error == rt.error then
    return -- the model was not tried: the runtime's error says why
  elseif m.error then
    health.error("model: " .. m.error, { "Set `model` to a model folder, or leave it nil for nib's own." })
  elseif m.path then
    health.ok(("model loads: %s, %s parameters (%s)"):format(m.path, tostring(m.parameters), tostring(m.architecture)))
  end
end

local function check_client()
  health.start("nib: client")
  local clients = vim.lsp.get_clients({ name = "nib" })
  if #clients == 0 then
    health.info("no nib client is running (it starts when a buffer of one of its filetypes opens)")
    return
  end
  local s = require("nib").status or {}
  local line = ("running (id %d), server state: %s"):format(clients[1].id, tostring(s.state))
  if s.state == "error" then
    health.error(line .. (s.message and (": " .. s.message) or ""))
  else
    health.ok(line)
  end
end

--- Other sources of ghost text: each would draw a second suggestion.
function M.conflicts()
  local found = {}
  if package.loaded["copilot"] or package.loaded["copilot.suggestion"] then
    found[#found + 1] = "copilot.lua"
  end
  if vim.g.loaded_copilot then
    found[#found + 1] = "copilot.vim"
  end
  for _, c in ipairs(vim.lsp.get_clients()) do
    local caps = c.server_capabilities or {}
    if c.name ~= "nib" and caps.inlineCompletionProvider then
      found[#found + 1] = ("the LSP client %q (inline completion)"):format(c.name)
    end
  end
  local o = require("nib.config").options
  local builtin = vim.lsp.inline_completion
  if o.inline.provider ~= "builtin" and builtin and builtin.is_enabled then
    local ok, on = pcall(builtin.is_enabled, {})
    if ok and on then
      found[#found + 1] = "vim.lsp.inline_completion (enabled while nib.nvim draws its own)"
    end
  end
  return found
end

local function check_conflicts()
  health.start("nib: other inline completion")
  local found = M.conflicts()
  if #found == 0 then
    health.ok("no other source of ghost text")
  end
  for _, what in ipairs(found) do
    health.warn(what .. " also shows inline suggestions", {
      "Turn one off, or give them different filetypes; two sources mean two requests and two ghost texts.",
    })
  end
end

function M.check()
  health.start("nib: Neovim")
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok(("Neovim %s"):format(tostring(vim.version())))
  else
    health.error("nib.nvim needs Neovim 0.10 or later")
  end
  local o = require("nib.config").options
  local path = check_binary(o)
  if path then
    check_doctor(o, path)
  end
  check_client()
  check_conflicts()
end

return M
