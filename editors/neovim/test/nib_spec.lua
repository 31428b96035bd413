-- Headless end-to-end tests of nib.nvim in a real Neovim, against a real
-- server process (`nib serve --stdio`, or the mock server for the review tests).
--
--   NIB_SERVER=/path/to/nib NIB_MODEL=tests/fixtures/models/llama \
--   NIB_TEST_RESULTS=/tmp/results.txt \
--   nvim --headless --clean -u NONE -c 'luafile editors/neovim/test/nib_spec.lua'
--
-- Environment:
--   NIB_SERVER        server binary (required)
--   NIB_MODEL         model folder passed as the `model` setting
--   NIB_TEST_SUITE    "real" (default): completions against a model;
--                     "mock": the mock server's fixed suggestion and review diagnostics
--   NIB_TEST_RESULTS  file the results are appended to, one per line:
--                     "ok <name>", "not ok <name>: <why>", "skip <name>: <why>"
--
-- Keys sent with nvim_input are only processed when control returns to the
-- main loop, so every test is a coroutine that sleeps with vim.defer_fn.
local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
-- The plugin is the repository's top folder (lua/, doc/, lsp/).
local plugin_dir = vim.fn.fnamemodify(here, ":h:h:h")
vim.opt.rtp:prepend(plugin_dir)
vim.cmd("filetype on")
vim.o.swapfile = false
vim.o.shortmess = vim.o.shortmess .. "F"

local suite = os.getenv("NIB_TEST_SUITE") or "real"
local server = assert(os.getenv("NIB_SERVER"), "NIB_SERVER is not set")
local TIMEOUT_MS = 120000
vim.lsp.set_log_level(os.getenv("NIB_TEST_LSP_LOG") or "warn")

local helpers = dofile(here .. "/helpers.lua")
local log = helpers.logger("nvim " .. suite)
local sleep, wait_for = helpers.sleep, helpers.wait_for

-- Hard timeout for the whole file.
local running = "setup"
vim.defer_fn(function()
  log("not ok nvim-" .. suite .. ": suite timed out after " .. TIMEOUT_MS .. " ms, in: " .. running)
  vim.cmd("cquit 2")
end, TIMEOUT_MS)

local notes = {}
local orig_notify = vim.notify
vim.notify = function(msg, level, opts)
  notes[#notes + 1] = msg
  io.stderr:write("[notify] " .. tostring(msg) .. "\n")
  return orig_notify(msg, level, opts)
end

local nib = require("nib")
local inline = require("nib.inline")
nib.setup({
  server_path = server,
  model = os.getenv("NIB_MODEL"),
  device = "cpu",
  max_tokens = 24,
  inline = { debounce_ms = 30 },
  keymaps = "recommended",
  -- Every candidate place is a finding, whatever the model prefers: the
  -- review test is deterministic with any model, the random one included.
  review = { min_confidence = 0 },
})


local function buf_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false), "\n")
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local workdir = vim.fn.tempname()
vim.fn.mkdir(workdir .. "/.git", "p")

-- Opens a fresh Python file holding `content` and waits for the server.
local function open_file(name, content)
  vim.cmd("stopinsert")
  local path = workdir .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  vim.cmd("edit " .. vim.fn.fnameescape(path))
  vim.bo.expandtab = false
  local bufnr = vim.api.nvim_get_current_buf()
  wait_for("the nib client to attach", 20000, function()
    return inline.client(bufnr)
  end)
  return bufnr, path
end

-- Types `chars` one key at a time at the end of the buffer until ghost text
-- shows; returns the suggestion and the buffer text before it.
local function type_until_suggestion(chars, per_key_ms)
  if suite ~= "mock" then
    -- A random model suggests nothing at some positions: type on until it does.
    chars = chars .. " result = total + count"
  end
  vim.api.nvim_input("<Esc>GA")
  sleep(50)
  for i = 1, #chars do
    local answered = inline.stats.responses
    vim.api.nvim_input(chars:sub(i, i))
    local deadline = per_key_ms
    while deadline > 0 do
      sleep(50)
      deadline = deadline - 50
      local s = inline.suggestion()
      if not s and inline.stats.responses > answered then
        sleep(50) -- the answer is drawn in the same tick; nothing came
        s = inline.suggestion()
        if not s then
          break -- answered with nothing: type on
        end
      end
      if s then
        local marks = vim.api.nvim_buf_get_extmarks(0, inline.namespace, 0, -1, { details = true })
        assert(#marks == 1, "expected one ghost-text extmark, found " .. #marks)
        return s, buf_text()
      end
    end
  end
  error("no ghost text appeared after typing " .. vim.inspect(chars), 0)
end

-- Waits until the server reports ready; returns its status.
local function wait_ready(timeout_ms)
  return wait_for("nib/status ready", timeout_ms, function()
    local st
    nib.refresh_status(function(x)
      st = x
    end)
    sleep(200)
    if st and st.state == "error" then
      error("the server reports an error: " .. tostring(st.message), 0)
    end
    return st and st.state == "ready" and st
  end)
end

local tests = {}
local function test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

test("status reports ready", function()
  local bufnr = open_file("status.py", "import os\n")
  local s = wait_ready(60000)
  notes = {}
  vim.cmd("NibStatus")
  local line = wait_for(":NibStatus output", 5000, function()
    return notes[#notes]
  end)
  assert(line:match("^nib: ready"), ":NibStatus said " .. line)
  assert(s.device, "status has no device")
  vim.api.nvim_buf_delete(bufnr, { force = true })
end)

test("typing shows ghost text; Tab inserts exactly it; the file holds it after :write", function()
  local _, path = open_file("accept.py", "def main():\n    ")
  local s, before = type_until_suggestion(suite == "mock" and "x" or "print(name", 5000)
  vim.api.nvim_input("<Tab>")
  local after = wait_for("the suggestion to be inserted", 3000, function()
    local t = buf_text()
    return t ~= before and t
  end)
  assert(after == before .. s, ("buffer is %q, expected %q"):format(after, before .. s))
  local lines = vim.split(before .. s, "\n", { plain = true })
  local cur = vim.api.nvim_win_get_cursor(0)
  assert(cur[1] == #lines and cur[2] == #lines[#lines], "cursor is not at the end of the insertion")
  assert(vim.api.nvim_get_mode().mode == "i", "left insert mode")
  vim.cmd("stopinsert")
  vim.cmd("write")
  local disk = read_file(path)
  assert(disk == before .. s .. "\n", ("file holds %q"):format(disk))
end)

test("Tab without a suggestion keeps its meaning (inserts a tab)", function()
  open_file("tab.py", "x = 1\n")
  vim.api.nvim_input("<Esc>Go")
  sleep(50)
  inline.dismiss() -- nothing shows, and nothing will until the next edit
  vim.api.nvim_input("<Tab>")
  sleep(300)
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  assert(lines[#lines] == "\t", ("last line is %q"):format(lines[#lines]))
end)

test("dismiss removes the ghost text", function()
  open_file("dismiss.py", "def f():\n    ")
  local _, before = type_until_suggestion(suite == "mock" and "y" or "return ", 5000)
  vim.api.nvim_input("<C-]>")
  wait_for("the ghost text to go", 2000, function()
    return #vim.api.nvim_buf_get_extmarks(0, inline.namespace, 0, -1, {}) == 0
  end)
  assert(buf_text() == before, "dismiss changed the buffer")
end)

test("accept word inserts the suggestion's next word and keeps the rest", function()
  open_file("word.py", "def g():\n    ")
  local s, before = type_until_suggestion(suite == "mock" and "z" or "value = ", 5000)
  local word = s:match("^%s*[%w_]+") or s:match("^%s*[^%w_%s]+") or s:match("^%s+") or s
  vim.api.nvim_input("<M-Right>")
  wait_for("the word to be inserted", 3000, function()
    return buf_text() == before .. word
  end)
  if #word < #s then
    assert(inline.suggestion() == s:sub(#word + 1), "the rest of the suggestion is not shown")
  end
end)

test("typing the suggestion's first character keeps the rest on screen", function()
  open_file("through.py", "def k():\n    ")
  local s = type_until_suggestion(suite == "mock" and "v" or "items = ", 5000)
  local first = s:sub(1, 1)
  if not first:match("^[%w_ ]$") or #s < 2 then
    return "skip", ("the suggestion starts with %q, not a plain key"):format(first)
  end
  local requests = inline.stats.requests
  vim.api.nvim_input(first)
  sleep(300)
  assert(inline.suggestion() == s:sub(2), ("suggestion is %q, expected %q"):format(tostring(inline.suggestion()), s:sub(2)))
  assert(inline.stats.requests == requests, "typing through asked the server again")
end)

test("typing a different character cancels the suggestion", function()
  open_file("cancel.py", "def h():\n    ")
  local s = type_until_suggestion(suite == "mock" and "w" or "x = ", 5000)
  -- A character the suggestion does not start with.
  local other = s:sub(1, 1) == "#" and "@" or "#"
  vim.api.nvim_input(other)
  sleep(20)
  assert(inline.suggestion() ~= s, "the old suggestion still shows after typing " .. other)
end)

test(":NibToggle turns suggestions off and on", function()
  open_file("toggle.py", "def t():\n    ")
  vim.cmd("NibToggle")
  local requests = inline.stats.requests
  vim.api.nvim_input("<Esc>GAvalue = count")
  sleep(800)
  assert(not inline.suggestion(), "a suggestion shows while off")
  assert(inline.stats.requests == requests, "requests were sent while off")
  vim.cmd("NibToggle")
  type_until_suggestion(suite == "mock" and "q" or " + total", 5000)
end)

test(":NibRestart starts a new server that becomes ready", function()
  local bufnr = open_file("restart.py", "import sys\n")
  local old = inline.client(bufnr).id
  vim.cmd("NibRestart")
  local new = wait_for("a new client", 20000, function()
    local c = inline.client(bufnr)
    return c and c.id ~= old and c
  end)
  wait_ready(60000)
  assert(not vim.lsp.get_client_by_id(old) or vim.lsp.get_client_by_id(old):is_stopped(), "the old server still runs")
  _ = new
end)

test(":help nib, nib-options and nib-cmp open the plugin's documentation (shipped tags)", function()
  for _, topic in ipairs({ "nib", "nib-options", "nib-cmp", "nib-builtin", "nib-lsp" }) do
    vim.cmd("help " .. topic)
    assert(vim.bo.filetype == "help", "not a help buffer for " .. topic)
    assert(vim.fn.expand("%:t") == "nib.txt", ":help " .. topic .. " opened " .. vim.fn.expand("%:t"))
    vim.cmd("close")
  end
end)

test("keys are mapped only in buffers nib is attached to", function()
  local bufnr = open_file("maps.py", "x = 1\n")
  assert(vim.fn.maparg("<Tab>", "i", false, true).buffer == 1, "no buffer-local <Tab> in a nib buffer")
  vim.cmd("enew")
  vim.bo.filetype = "text"
  local m = vim.fn.maparg("<Tab>", "i", false, true)
  -- (Neovim 0.11 has a global <Tab> of its own, for snippets.)
  assert(not (m.desc or ""):find("^nib"), "nib mapped <Tab> in a buffer it is not attached to: " .. vim.inspect(m))
  vim.cmd("bwipeout!")
  vim.api.nvim_buf_delete(bufnr, { force = true })
end)

test("one debounce: the server is told not to wait again", function()
  local settings = require("nib.config").server_settings()
  assert(settings.nib.debounceMs == 0, "debounceMs sent: " .. tostring(settings.nib.debounceMs))
  local c = inline.client(0) or nib.lsp_config()
  assert(c.settings.nib.debounceMs == 0, "the client's settings say " .. tostring(c.settings.nib.debounceMs))
end)

local function server_commands()
  local c = inline.client(0)
  local p = c and c.server_capabilities.executeCommandProvider
  return p and p.commands or {}
end

-- The single text edit of a code action, in either WorkspaceEdit form.
local function only_edit(action, uri)
  local edit = action.edit or {}
  local edits = edit.changes and edit.changes[uri]
  if not edits and edit.documentChanges then
    edits = {}
    for _, change in ipairs(edit.documentChanges) do
      vim.list_extend(edits, change.edits or {})
    end
  end
  assert(edits and #edits == 1, "expected one edit in " .. vim.inspect(action))
  return edits[1]
end

test("a review diagnostic appears on the buggy line and its quick fix applies", function()
  local bufnr, path = open_file("review.py", "def check(x):\n    if x == None:\n        return 0\n    return x\n")
  if not vim.tbl_contains(server_commands(), "nib.reviewFile") then
    return "skip", "the server does not offer nib.reviewFile yet"
  end
  wait_ready(60000)
  vim.cmd("NibReview")
  local diag = wait_for("a nib diagnostic on line 2", 20000, function()
    for _, d in ipairs(vim.diagnostic.get(bufnr, { lnum = 1 })) do
      if d.source == "nib" then
        return d
      end
    end
  end)
  local lsp_diag = diag.user_data and diag.user_data.lsp
  assert(lsp_diag, "the diagnostic does not come from the LSP client")
  -- The quick fix the server offers for it (asked directly, to know what to expect).
  local uri = vim.uri_from_bufnr(bufnr)
  local answer
  require("nib.client").request(inline.client(bufnr), "textDocument/codeAction", {
    textDocument = { uri = uri },
    range = lsp_diag.range,
    context = { diagnostics = { lsp_diag } },
  }, function(err, result)
    answer = { err = err, result = result or {} }
  end, bufnr)
  wait_for("the code actions", 10000, function()
    return answer
  end)
  assert(not answer.err, "codeAction failed: " .. vim.inspect(answer.err))
  local fix
  for _, a in ipairs(answer.result) do
    if a.title:match("^nib") then
      fix = a
    end
  end
  assert(fix, "no nib code action in " .. vim.inspect(answer.result))
  local e = only_edit(fix, uri)
  local data = lsp_diag.data or {}
  if data.replacement then
    assert(e.newText == data.replacement, ("the fix inserts %q, the diagnostic proposes %q"):format(e.newText, data.replacement))
  end
  local line = vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1]
  local expected = line:sub(1, e.range.start.character) .. e.newText .. line:sub(e.range["end"].character + 1)
  -- Applied the way a user would: the code action at the diagnostic.
  vim.api.nvim_win_set_cursor(0, { 2, diag.col })
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(a)
      return a.title:match("^nib") ~= nil
    end,
  })
  wait_for("the quick fix to apply", 5000, function()
    return vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1] == expected
  end)
  vim.cmd("write")
  local disk = read_file(path)
  assert(vim.split(disk, "\n", { plain = true })[2] == expected, ("the file holds %q, expected line 2 %q"):format(disk, expected))
end)

local only = os.getenv("NIB_TEST_ONLY")
local failed = 0
local function run(i)
  local t = tests[i]
  if not t then
    vim.defer_fn(function()
      vim.cmd(failed > 0 and "cquit 1" or "qall!")
    end, 10)
    return
  end
  if only and not t.name:find(only, 1, true) then
    return run(i + 1)
  end
  local name = "nvim-" .. suite .. ": " .. t.name
  running = t.name
  local t0 = vim.uv.now()
  local function finish(ok, a, b)
    io.stderr:write(("[nvim %s] %s took %d ms\n"):format(suite, t.name, vim.uv.now() - t0))
    if not ok then
      failed = failed + 1
      log("not ok " .. name .. ": " .. tostring(a))
    elseif a == "skip" then
      log("skip " .. name .. ": " .. tostring(b))
    else
      log("ok " .. name)
    end
    vim.cmd("silent! stopinsert")
    inline.on_insert_leave()
    vim.defer_fn(function()
      run(i + 1)
    end, 50)
  end
  -- The test body runs in a coroutine (LuaJIT lets it yield inside pcall);
  -- sleep() resumes it from timers.
  local co = coroutine.create(function()
    local ok, a, b = pcall(t.fn)
    vim.schedule(function()
      finish(ok, a, b)
    end)
  end)
  local ok, err = coroutine.resume(co)
  if not ok then
    finish(false, err)
  end
end

run(1)
