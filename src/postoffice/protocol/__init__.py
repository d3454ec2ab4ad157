"""Sans-IO protocol state machines: bytes in, events out; replies in, bytes out.

Nothing in this package performs I/O, reads a clock, opens a file or imports
asyncio: the drivers in ``server/`` own sockets, timers and policy, and feed
these objects (DESIGN.md §2, §7). Shared pieces live here (``sasl``,
``errors``); each protocol has its own subpackage (``smtp``, ``pop3``; IMAP
later).
"""
