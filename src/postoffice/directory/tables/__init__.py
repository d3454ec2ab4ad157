"""The sendmail-format tables, each parsed from its classic text syntax."""
