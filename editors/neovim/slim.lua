-- slimc for Neovim 0.10+. Copy this folder's contents into ~/.config/nvim/ (this file into
-- plugin/, syntax/slimc.vim into syntax/). `.slim` files get the filetype `slimc` (not `slim`,
-- which Neovim gives Ruby's Slim templates), highlighting, and `slimc lsp`.
vim.filetype.add({ extension = { slim = "slimc" } })

vim.api.nvim_create_autocmd("FileType", {
  pattern = "slimc",
  callback = function(args)
    vim.bo[args.buf].commentstring = "# %s"
    vim.lsp.start({
      name = "slimc",
      cmd = { "slimc", "lsp" },
      root_dir = vim.fs.root(args.buf, { "models", ".git" }) or vim.fn.getcwd(),
      -- The width hover and inlay hints show next to full width; hints on or off.
      init_options = { width = 0.5, inlayHints = true },
    })
  end,
})
