"""IMAP4rev1 and IMAP4rev2 (RFC 3501, RFC 9051), sans-IO: framing, grammar, commands, responses."""
