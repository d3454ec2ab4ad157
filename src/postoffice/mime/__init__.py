"""Message structure: the exact-byte part index IMAP serves from, and the trace headers postoffice adds."""
