"""Message structure: the exact-byte part index IMAP serves from; the trace headers we add."""
