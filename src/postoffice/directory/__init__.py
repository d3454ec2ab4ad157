"""Directory: accounts, domains, the sendmail-format tables and the routing decision."""
