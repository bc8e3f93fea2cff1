"""The coding worklist: encounters awaiting a human coder, kept in Redis (key layout in docs/worklist.md)."""
