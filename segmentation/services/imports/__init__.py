"""Importers: files -> readers -> services. One module per source; each imports one galaxy per transaction."""
