-- nib.nvim as a plugin manager installs it: the repository cloned from a
-- git URL into a package folder (what lazy.nvim and vim.pack do), then
-- used with no setup() (lsp/nib.lua), checked with :checkhealth nib, and
-- set up with its defaults.
--
--   NIB_PLUGIN_SITE=<folder with pack/nib/start/nib> NIB_MODEL=... \
--   nvim --headless --clean -u NONE -c 'luafile editors/neovim/test/install_spec.lua'
--
-- `nib` must be on $PATH (the plugin's default server_path). Results go to
-- NIB_TEST_RESULTS as "ok <name>" / "not ok <name>: <why>" lines.
local site = assert(os.getenv("NIB_PLUGIN_SITE"), "NIB_PLUGIN_SITE is not set")
local model = os.getenv("NIB_MODEL")
vim.opt.packpath:prepend(site)
vim.cmd("packloadall!")
vim.cmd("filetype on")
vim.o.swapfile = false

local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
local helpers = dofile(here .. "/helpers.lua")
local log = helpers.logger("nvim package")
local sleep, wait_for = helpers.sleep, helpers.wait_for

vim.defer_fn(function()
  log("not ok nvim-package: timed out")
  vim.cmd("cquit 2")
end, 180000)


local clone = vim.fs.joinpath(site, "pack/nib/start/nib")
local tests = {}
local function test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

test("the clone is on 'runtimepath' and require('nib') loads from it", function()
  local file = vim.api.nvim_get_runtime_file("lua/nib/init.lua", false)[1]
  assert(file and vim.startswith(vim.fs.normalize(file), vim.fs.normalize(clone)), "lua/nib/init.lua found at " .. tostring(file))
  assert(vim.api.nvim_get_runtime_file("lsp/nib.lua", false)[1], "lsp/nib.lua is not on 'runtimepath'")
  require("nib")
end)

test("the shipped help tags are current", function()
  local tmp = vim.fn.tempname()
  vim.fn.mkdir(tmp, "p")
  vim.fn.writefile(vim.fn.readfile(clone .. "/doc/nib.txt"), tmp .. "/nib.txt")
  vim.cmd("helptags " .. vim.fn.fnameescape(tmp))
  local want = table.concat(vim.fn.readfile(tmp .. "/tags"), "\n")
  local have = table.concat(vim.fn.readfile(clone .. "/doc/tags"), "\n")
  assert(want == have, "doc/tags differs from :helptags doc (regenerate it)")
  vim.cmd("help nib-health")
  assert(vim.fn.expand("%:p") == vim.fs.normalize(clone .. "/doc/nib.txt"), ":help opened " .. vim.fn.expand("%:p"))
  vim.cmd("close")
end)

test("vim.lsp.enable('nib') works without setup(): the server attaches and answers", function()
  if vim.fn.has("nvim-0.11") == 0 then
    return "skip", "vim.lsp.enable needs Neovim 0.11"
  end
  if model then
    vim.lsp.config("nib", { settings = { nib = { model = model } } })
  end
  vim.lsp.enable("nib")
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir .. "/.git", "p")
  vim.fn.writefile({ "def add(a, b):", "    return a + b" }, dir .. "/add.py")
  vim.cmd("edit " .. vim.fn.fnameescape(dir .. "/add.py"))
  local client = wait_for("a nib client", 20000, function()
    return vim.lsp.get_clients({ name = "nib", bufnr = 0 })[1]
  end)
  local state
  wait_for("nib/status ready", 60000, function()
    client:request("nib/status", vim.empty_dict(), function(_, result)
      state = result and result.state
    end)
    sleep(200)
    assert(state ~= "error", "the server reports an error")
    return state == "ready"
  end)
  local answered = false
  client:request("textDocument/inlineCompletion", {
    textDocument = { uri = vim.uri_from_bufnr(0) },
    position = { line = 1, character = 16 },
    context = { triggerKind = 1 },
  }, function(err)
    assert(not err, vim.inspect(err))
    answered = true
  end, 0)
  wait_for("the inline completion answer", 30000, function()
    return answered
  end)
  client:stop(true)
  wait_for("the client to stop", 10000, function()
    return client:is_stopped()
  end)
  vim.lsp.enable("nib", false)
  vim.cmd("bwipeout!")
end)

test(":checkhealth nib reports the binary, nib doctor and the model, and no error", function()
  require("nib.config").setup({ model = model })
  vim.cmd("checkhealth nib")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  vim.cmd("bwipeout!")
  assert(text:find("nib: server binary", 1, true), "no binary section in:\n" .. text)
  assert(text:find("OK nib %d"), "no OK line with nib's version in:\n" .. text)
  assert(text:find("OK ONNX Runtime", 1, true), "ONNX Runtime not reported OK in:\n" .. text)
  assert(text:find("OK model loads", 1, true), "the model not reported OK in:\n" .. text)
  assert(text:find("OK no other source of ghost text", 1, true), "conflict check missing in:\n" .. text)
  assert(not text:find("ERROR", 1, true), "checkhealth reports an error:\n" .. text)
end)

test(":checkhealth nib warns about another source of ghost text", function()
  package.loaded["copilot"] = {} -- what copilot.lua leaves once loaded
  vim.cmd("checkhealth nib")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  vim.cmd("bwipeout!")
  package.loaded["copilot"] = nil
  assert(text:find("WARNING copilot.lua also shows inline suggestions", 1, true), "no warning in:\n" .. text)
end)

test("setup() with the defaults maps no key", function()
  require("nib").setup({ model = model })
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir .. "/.git", "p")
  vim.fn.writefile({ "x = 1" }, dir .. "/x.py")
  vim.cmd("edit " .. vim.fn.fnameescape(dir .. "/x.py"))
  wait_for("a nib client", 20000, function()
    return vim.lsp.get_clients({ name = "nib", bufnr = 0 })[1]
  end)
  sleep(100)
  for _, m in ipairs(vim.list_extend(vim.api.nvim_get_keymap("i"), vim.api.nvim_buf_get_keymap(0, "i"))) do
    assert(not (m.desc or ""):find("^nib"), "setup() mapped " .. m.lhs)
  end
end)

local failed = 0
local co = coroutine.create(function()
  for _, t in ipairs(tests) do
    local ok, a, b = pcall(t.fn)
    if not ok then
      failed = failed + 1
      log("not ok nvim-package: " .. t.name .. ": " .. tostring(a))
    elseif a == "skip" then
      log("skip nvim-package: " .. t.name .. ": " .. tostring(b))
    else
      log("ok nvim-package: " .. t.name)
    end
  end
  vim.schedule(function()
    vim.cmd(failed > 0 and "cquit 1" or "qall!")
  end)
end)
assert(coroutine.resume(co))
