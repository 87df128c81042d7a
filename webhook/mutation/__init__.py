"""Pure admission decisions: plain dicts in, decisions and JSON Patch operations out. No I/O here."""
