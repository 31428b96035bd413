-- nib's language server for Neovim 0.11+'s own LSP client, with or without
-- nib.nvim's setup():
--
--   vim.lsp.enable("nib")
--
-- gives review diagnostics with quick fixes and, on Neovim 0.12, ghost text
-- through vim.lsp.inline_completion.enable(). Override any field with
-- vim.lsp.config("nib", { ... }), e.g. cmd = { "/abs/path/nib", "serve", "--stdio" }
-- or settings = { nib = { model = "~/models/x" } }. See :help nib-lsp.
return {
  cmd = { "nib", "serve", "--stdio" },
  -- The languages nib reviews and completes (the plugin's defaults, which a
  -- test keeps equal to nib's languages table).
  filetypes = require("nib.config").defaults.filetypes,
  root_markers = require("nib.config").defaults.root_markers,
}
