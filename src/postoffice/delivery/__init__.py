"""Delivery: from the queue into mailboxes (local) and, later, to other hosts (remote)."""
