"""Admin for ImportBatch: upload, background check with progress, preview, confirm (being built)."""
