"""dcoder language server: editors talk LSP to it (``dcoder lsp``)."""
