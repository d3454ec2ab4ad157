"""Byte pipes over asyncio transports, shared by the servers (``server/``) and the
SMTP client of remote delivery (``delivery/``): the one place that reads and
writes sockets and switches them to TLS."""
