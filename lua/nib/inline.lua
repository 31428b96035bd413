-- Ghost text: nib's own `textDocument/inlineCompletion` requests (LSP 3.18),
-- debounced and cancelled on further typing, drawn with extmarks.
local config = require("nib.config")
local lsp_client = require("nib.client")

local M = {}

local ns = vim.api.nvim_create_namespace("nib.inline")
local has_011 = lsp_client.has_011

-- The suggestion on screen, or nil:
-- { bufnr, row, col (0-based, bytes), before (line text before the cursor),
--   text (what is left to insert), replace_end (byte column the first accepted
--   line replaces up to), command (LSP command to run after a full accept) }
local current = nil
local timer = nil
local inflight = nil -- { client, id }
local seq = 0 -- bumped on every trigger; stale responses compare against it
local suppressed = false -- after dismiss, until the next edit

M.namespace = ns
-- Counters, for tests and :NibStatus: answers handled (not superseded).
M.stats = { requests = 0, responses = 0, shown = 0 }

--- The nib client attached to a buffer, if any.
function M.client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr or 0, name = "nib" })[1]
end

local function byte_col(line, character, encoding)
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local ok, col
  if has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == "utf-16")
  end
  if not ok then
    return #line
  end
  return col
end

local function cursor()
  local pos = vim.api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function line_text(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

local function cancel_inflight()
  if inflight then
    pcall(lsp_client.cancel, inflight.client, inflight.id)
    inflight = nil
  end
end

local function stop_timer()
  if timer then
    timer:stop()
    timer:close()
    timer = nil
  end
end

local function draw()
  if not current or not vim.api.nvim_buf_is_valid(current.bufnr) then
    return
  end
  vim.api.nvim_buf_clear_namespace(current.bufnr, ns, 0, -1)
  local hl = config.options.inline.hl_group
  local lines = vim.split(current.text, "\n", { plain = true })
  local opts = { hl_mode = "combine", priority = 1000 }
  if lines[1] ~= "" then
    opts.virt_text = { { lines[1], hl } }
    opts.virt_text_pos = "inline"
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      opts.virt_lines[#opts.virt_lines + 1] = { { lines[i], hl } }
    end
  end
  current.extmark = vim.api.nvim_buf_set_extmark(current.bufnr, ns, current.row, current.col, opts)
  current.tick = vim.api.nvim_buf_get_changedtick(current.bufnr)
end

--- Removes the suggestion from the screen and forgets it.
function M.clear()
  if current and vim.api.nvim_buf_is_valid(current.bufnr) then
    vim.api.nvim_buf_clear_namespace(current.bufnr, ns, 0, -1)
  end
  current = nil
end

--- Whether a suggestion is on screen in the current buffer.
function M.visible()
  return current ~= nil and current.bufnr == vim.api.nvim_get_current_buf() and current.text ~= ""
end

--- The suggestion's remaining text (for tests and statuslines), or nil.
function M.suggestion()
  return M.visible() and current.text or nil
end

local function item_text(item)
  local t = item.insertText
  if type(t) == "table" then
    t = t.value -- a StringValue (snippet): shown and inserted as plain text
  end
  return t
end

-- Turns the server's answer into `current`, relative to the cursor now.
local function show(bufnr, result, client)
  local items = result and (result.items or result) or {}
  local row, col = cursor()
  local line = line_text(bufnr, row)
  for _, item in ipairs(items) do
    local text = item_text(item)
    local replace_end = col
    if text and item.range then
      local s, e = item.range.start, item.range["end"]
      if s.line ~= row then
        text = nil
      else
        local scol = byte_col(line, s.character, client.offset_encoding)
        local typed = line:sub(scol + 1, col)
        if scol > col or text:sub(1, #typed) ~= typed then
          text = nil
        else
          text = text:sub(#typed + 1)
          if e.line == row then
            replace_end = math.max(col, byte_col(line, e.character, client.offset_encoding))
          end
        end
      end
    end
    if text and text ~= "" then
      current = {
        bufnr = bufnr,
        row = row,
        col = col,
        before = line:sub(1, col),
        text = text,
        replace_end = replace_end,
        command = item.command,
        client_id = client.id,
      }
      draw()
      M.stats.shown = M.stats.shown + 1
      return
    end
  end
end

--- Asks the server for a suggestion at the cursor now.
function M.request(trigger_kind)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client or not config.enabled_for(vim.bo[bufnr].filetype) then
    return
  end
  cancel_inflight()
  seq = seq + 1
  local my_seq = seq
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local row, col = cursor()
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = trigger_kind or 2 } -- 1 invoked, 2 automatic
  M.stats.requests = M.stats.requests + 1
  local ok, id = lsp_client.request(client, "textDocument/inlineCompletion", params, function(err, result)
    if my_seq ~= seq then
      return -- superseded
    end
    inflight = nil
    M.stats.responses = M.stats.responses + 1
    if err then
      if err.code ~= -32800 then -- RequestCancelled
        vim.notify_once("nib: " .. (err.message or vim.inspect(err)), vim.log.levels.DEBUG)
      end
      return
    end
    if vim.api.nvim_get_current_buf() ~= bufnr or not vim.api.nvim_get_mode().mode:match("^i") then
      return
    end
    local r, c = cursor()
    if r ~= row or c ~= col or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick then
      return
    end
    M.clear()
    show(bufnr, result, client)
  end, bufnr)
  if ok and id then
    inflight = { client = client, id = id }
  end
end

--- Debounced trigger, called on every edit in insert mode.
function M.schedule()
  stop_timer()
  cancel_inflight()
  seq = seq + 1
  if suppressed then
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  timer = vim.uv.new_timer()
  timer:start(
    config.options.inline.debounce_ms,
    0,
    vim.schedule_wrap(function()
      stop_timer()
      if vim.api.nvim_get_current_buf() == bufnr and vim.api.nvim_get_mode().mode:match("^i") then
        M.request(2)
      end
    end)
  )
end

-- On an edit: keep the suggestion when the edit typed through its start (or
-- was our own partial accept), otherwise drop it and ask again.
function M.on_text_changed()
  suppressed = false
  if current then
    local bufnr = vim.api.nvim_get_current_buf()
    local row, col = cursor()
    local line = line_text(bufnr, row)
    if bufnr == current.bufnr and row == current.row and col >= current.col
      and line:sub(1, current.col) == current.before then
      local typed = line:sub(current.col + 1, col)
      if current.text:sub(1, #typed) == typed and #typed < #current.text then
        current.text = current.text:sub(#typed + 1)
        current.col = col
        current.before = line:sub(1, col)
        current.replace_end = math.max(col, current.replace_end)
        draw()
        return
      end
    end
    M.clear()
  end
  M.schedule()
end

-- On cursor motion without an edit: drop a suggestion the cursor left.
function M.on_cursor_moved()
  -- CursorMovedI fires before TextChangedI: after an edit, on_text_changed decides.
  if current and vim.api.nvim_buf_is_valid(current.bufnr)
    and vim.api.nvim_buf_get_changedtick(current.bufnr) == current.tick then
    local row, col = cursor()
    if vim.api.nvim_get_current_buf() ~= current.bufnr or row ~= current.row or col ~= current.col then
      M.clear()
      stop_timer()
      cancel_inflight()
    end
  end
end

function M.on_insert_leave()
  stop_timer()
  cancel_inflight()
  M.clear()
  suppressed = false
end

--- Dismisses the suggestion until the next edit.
function M.dismiss()
  stop_timer()
  cancel_inflight()
  M.clear()
  suppressed = true
end

local function next_word(text)
  return text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]+") or text:match("^%s+") or text
end

local function next_line(text)
  local nl = text:find("\n", 1, true)
  if not nl then
    return text
  end
  if nl > 1 then
    return text:sub(1, nl - 1)
  end
  -- The suggestion starts a new line: take that line whole.
  local nl2 = text:find("\n", 2, true)
  return nl2 and text:sub(1, nl2 - 1) or text
end

--- Inserts all of the suggestion ("all"), its next word ("word") or the rest
--- of its current line ("line"). Returns false when none shows.
function M.accept(kind)
  if not M.visible() then
    return false
  end
  local c = current
  local part = c.text
  if kind == "word" then
    part = next_word(c.text)
  elseif kind == "line" then
    part = next_line(c.text)
  end
  local rest = c.text:sub(#part + 1)
  local replace_end = (rest == "") and c.replace_end or c.col
  local lines = vim.split(part, "\n", { plain = true })
  stop_timer()
  cancel_inflight()
  vim.api.nvim_buf_clear_namespace(c.bufnr, ns, 0, -1)
  -- Keep `current` during the edit so on_text_changed sees our own edit.
  local new_row = c.row + #lines - 1
  local new_col = (#lines == 1) and (c.col + #part) or #lines[#lines]
  vim.api.nvim_buf_set_text(c.bufnr, c.row, c.col, c.row, replace_end, lines)
  vim.api.nvim_win_set_cursor(0, { new_row + 1, new_col })
  if rest ~= "" then
    -- The text the full accept would replace moved along with the cursor.
    c.replace_end = new_col + (c.replace_end - c.col)
    c.row, c.col = new_row, new_col
    c.before = line_text(c.bufnr, new_row):sub(1, new_col)
    c.text = rest
    draw()
  else
    current = nil
    if c.command then
      local client = vim.lsp.get_client_by_id(c.client_id)
      if client then
        lsp_client.request(client, "workspace/executeCommand", c.command, function() end, c.bufnr)
      end
    end
  end
  return true
end

return M
