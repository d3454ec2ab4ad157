"""Mailbox store: one async interface over Maildir and mbox, with a SQLite index."""
