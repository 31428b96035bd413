-- What both Neovim specs need: result lines, and waiting inside a test's
-- coroutine (keys sent with nvim_input are processed only when control
-- returns to the main loop, so tests sleep with vim.defer_fn).
local M = {}

--- A function that prints `line` on stderr under `label` and appends it to
--- $NIB_TEST_RESULTS.
function M.logger(label)
  local results_path = os.getenv("NIB_TEST_RESULTS")
  return function(line)
    io.stderr:write("[" .. label .. "] " .. line .. "\n")
    if results_path then
      local f = assert(io.open(results_path, "a"))
      f:write(line .. "\n")
      f:close()
    end
  end
end

function M.sleep(ms)
  local co = coroutine.running()
  vim.defer_fn(function()
    local ok, err = coroutine.resume(co)
    if not ok then
      error(err)
    end
  end, ms)
  coroutine.yield()
end

--- Polls `cond` every 50 ms until it returns a true value, which it returns.
function M.wait_for(what, timeout_ms, cond)
  local waited = 0
  while waited < timeout_ms do
    local v = cond()
    if v then
      return v
    end
    M.sleep(50)
    waited = waited + 50
  end
  error("timed out after " .. timeout_ms .. " ms waiting for " .. what, 0)
end

return M
