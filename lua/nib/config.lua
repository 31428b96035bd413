-- nib.nvim configuration: defaults, merging, and the settings object sent to
-- the server (`{ nib = { ... } }`, the same shape VS Code sends).
local M = {}

M.defaults = {
  -- The server binary: a name on $PATH or an absolute path.
  server_path = "nib",
  -- Extra arguments after `serve --stdio`.
  server_args = {},
  -- Environment for the server process (e.g. { NIB_MODEL = "..." }).
  server_env = nil,
  -- Filetypes the server attaches to.
  filetypes = {
    "python", "rust", "javascript", "javascriptreact", "typescript", "typescriptreact",
    "go", "c", "cpp", "java", "lua", "sh", "ruby", "php", "cs", "kotlin", "swift", "scala",
    "zig", "html", "css", "json", "yaml", "toml", "sql", "r", "perl",
  },
  -- Where a project starts (also lsp/nib.lua's).
  root_markers = { "nib.toml", "pyproject.toml", ".git" },
  -- Settings mirrored to the server.
  model = nil, -- model folder; nil lets the server choose ($NIB_MODEL, then its own)
  device = "auto", -- "auto" | "cpu" | "cuda" | "cuda:N"
  -- "onnx" (in the server process) | "openai" | "llama.cpp" (an inference
  -- server at server.url; `model` then names a folder with its tokenizer)
  backend = "onnx",
  server = {
    url = nil, -- "http://127.0.0.1:8080": the only address contacted
    model = nil, -- model name sent to the server (vLLM, Ollama)
    api_key_env = nil, -- environment variable holding the API key
    timeout_ms = 30000,
    fim = "nib", -- "server": llama.cpp's /infill lays out prompts (no tokenizer.json needed)
  },
  threads = nil, -- ONNX Runtime threads on the CPU; nil: one per core
  max_tokens = 64,
  temperature = 0,
  prompt_tokens = nil, -- prompt budget in tokens; nil: the server's (1024)
  context_files = nil, -- other open files of the language given as context; nil: 3
  -- Inline completions (ghost text).
  inline = {
    enabled = true,
    -- Who asks for and draws ghost text: "nib" (this plugin, on 0.10+) or
    -- "builtin" (Neovim 0.12's vim.lsp.inline_completion; older versions
    -- fall back to "nib" with a warning). Only one of them runs.
    provider = "nib",
    -- The one wait after the last keystroke: the plugin's with "nib" (the
    -- server is told not to wait again), the server's with "builtin".
    debounce_ms = 75,
    -- Per language: { ["*"] = true, markdown = false }. Sent to the server as `enable`.
    enable = { ["*"] = true, markdown = false, text = false, gitcommit = false },
    hl_group = "NibSuggestion",
  },
  -- Code review diagnostics (published by the server; shown by vim.diagnostic).
  review = {
    enabled = true, -- reviews on open, on save and on :NibReview
    min_confidence = nil, -- 0..1; nil: the server's default (sure findings only)
  },
  -- Insert-mode keys, mapped only in buffers nib is attached to, and only
  -- those given: nothing is mapped by default. `keymaps = "recommended"`
  -- takes M.recommended_keymaps; with nvim-cmp or blink.cmp, see
  -- :help nib-cmp instead.
  keymaps = {
    accept = false, -- e.g. "<Tab>": falls back to the key's previous meaning when no suggestion shows
    accept_word = false,
    accept_line = false,
    dismiss = false,
    next = false, -- ask for a suggestion now (manual trigger)
  },
}

M.recommended_keymaps = {
  accept = "<Tab>",
  accept_word = "<M-Right>",
  accept_line = "<M-C-Right>",
  dismiss = "<C-]>",
  next = "<M-]>",
}

M.options = vim.deepcopy(M.defaults)

--- Whether this Neovim draws inline completions itself (0.12+).
function M.has_builtin_inline()
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

--- The provider in effect: "builtin" only where Neovim has one.
function M.provider()
  if M.options.inline.provider == "builtin" and M.has_builtin_inline() then
    return "builtin"
  end
  return "nib"
end

function M.setup(opts)
  opts = vim.deepcopy(opts or {})
  if opts.keymaps == "recommended" then
    opts.keymaps = vim.deepcopy(M.recommended_keymaps)
  end
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  -- A list given by the user replaces the default list instead of merging index by index.
  if opts and opts.filetypes then
    M.options.filetypes = opts.filetypes
  end
  return M.options
end

--- The settings object the server reads from initializationOptions and
--- workspace/didChangeConfiguration.
function M.server_settings()
  local o = M.options
  return {
    nib = {
      model = o.model,
      device = o.device,
      backend = o.backend,
      server = {
        url = o.server.url,
        model = o.server.model,
        apiKeyEnv = o.server.api_key_env,
        timeoutMs = o.server.timeout_ms,
        fim = o.server.fim,
      },
      threads = o.threads,
      maxTokens = o.max_tokens,
      temperature = o.temperature,
      promptTokens = o.prompt_tokens,
      contextFiles = o.context_files,
      -- One debounce: the plugin waits before it asks, so the server need not.
      debounceMs = M.provider() == "nib" and 0 or o.inline.debounce_ms,
      -- false when toggled off (the server then offers no completion menu items either)
      enable = o.inline.enabled and o.inline.enable or false,
      review = { enable = o.review.enabled, minConfidence = o.review.min_confidence },
    },
  }
end

--- Whether inline completions are on for a filetype.
function M.enabled_for(ft)
  local o = M.options
  if not o.inline.enabled then
    return false
  end
  local v = o.inline.enable[ft]
  if v == nil then
    v = o.inline.enable["*"]
  end
  return v ~= false
end

return M
