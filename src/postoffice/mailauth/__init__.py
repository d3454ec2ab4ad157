"""Mail authentication: DKIM signing (RFC 6376) now; SPF and DMARC later (DESIGN.md §2).

This layer sits beside queue, delivery and store: it may use core, protocol
and mime, never server, cli or delivery. DNS reaches it only through what the
caller injects, so every check here can be tested without a network.
"""
