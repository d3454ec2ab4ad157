"""The files ``postoffice init`` writes: a commented config and documented, empty tables.

Owns their text only; ``cli.init_command`` decides where they go.
"""

from __future__ import annotations

CONFIG_TEMPLATE = """\
# postoffice configuration (TOML). Written by `postoffice init`; edit freely.
# `postoffice check` validates this file and the tables; an unknown key is an error.

# This mail host's name: greeting banners, HELO, Received headers.
hostname = "{hostname}"
# The domain that bare local names (`root`, `alice` in aliases) belong to.
primary_domain = "{primary_domain}"
# Every relative path below lives under this folder (relative to this file).
data_dir = "{data_dir}"

[listen]
# One list of HOST:PORT per protocol role; `serve --listen PROTO=HOST:PORT` overrides.
{listen}

[tls]
cert = "etc/tls/cert.pem"   # PEM certificate chain (a self-signed one was made for you)
key = "etc/tls/key.pem"     # PEM private key (mode 0600)

[store]
# "maildir": mail/DOMAIN/USER/ (cur, new, tmp; Maildir++ folders .Sent, .Trash, ...)
# "mbox":    INBOX in spool/mail/USER (the classic /var/spool/mail), folders under mail/
format = "{store_format}"
fsync = true                # never turn off on a server that accepts real mail

[tables]
# The sendmail-format tables: local-host-names, access, aliases, virtusertable,
# mailertable, genericstable. They are reloaded automatically when they change.
dir = "etc/mail"

[aliases]
allow_program_targets = false   # allow "|command" targets in the aliases file
allow_file_targets = false      # allow "/path/file" targets in the aliases file
max_depth = 20                  # alias expansion depth before a loop is declared
max_fanout = 1000               # most final recipients one address may expand to

[relay]
# Clients in these networks may relay to any domain (DESIGN: default is this host only).
mynetworks = ["127.0.0.1/32", "::1/128"]

[log]
maillog = "log/maillog"     # one line per mail event, Postfix style
level = "info"              # debug, info, warning, error

[server]
# Worker processes that accept connections and deliver mail, beside the
# master that binds the ports and restarts a worker that dies.
# 0: one per CPU core; 1: one process does everything.
workers = 0
# The event loop: "asyncio" (the standard library's), "uvloop" (installed with
# pip install 'postoffice[uvloop]'), or "auto" (uvloop when it is installed).
event_loop = "asyncio"

[smtp]
# Limits and policy of the SMTP server (defaults after Postfix's).
max_message_size = 10485760     # octets; advertised in EHLO SIZE
max_line_length = 2048          # octets per command line
max_recipients = 1000           # per message
max_connections_per_client = 50 # simultaneous, per client address
max_errors = 20                 # then 421 and close
tarpit_after_errors = 10        # then each reply waits tarpit_delay seconds
tarpit_delay = 1.0
idle_timeout = 300.0            # seconds without a command
min_data_rate = 500             # octets per second while receiving a message
max_received_headers = 100      # messages with more are refused
loop_received_headers = 50      # more at delivery: a mail loop, bounced
vrfy_enabled = true             # VRFY answers 252 (false: 502)
expn_for_trusted = false        # EXPN for mynetworks clients (others: 502)
relay_denied_temporary = false  # true: 454 4.7.1 instead of 554 5.7.1
# A local mailbox over its quota (`postoffice user quota`): "defer" answers
# 452 4.2.2 (the sender retries), "reject" 552 5.2.2 (it bounces); the same
# at RCPT and when the queue delivers.
over_quota = "defer"
plaintext_auth_on_loopback = false  # AUTH without TLS from this host only
login_failure_delay = 2.0       # seconds a failed AUTH waits, doubled per failure...
login_failure_delay_max = 15.0  # ...per client address, up to this
submission_received = "full"    # Received: of logged-in submissions: "full" or "withhold"

[queue]
# When deferred mail is tried again, in seconds (Postfix's names and defaults).
minimal_backoff = 300.0         # the first retry; the wait doubles after each failure...
maximal_backoff = 4000.0        # ...up to this
maximal_queue_lifetime = 432000.0   # 5 days, then the sender gets a bounce
bounce_queue_lifetime = 432000.0    # the same for bounces that cannot be delivered
delay_warning = 0.0             # seconds before a "still trying" notice; 0: none
bounce_size_limit = 50000       # octets of the original a bounce returns, else headers
max_deliveries = 32             # messages in delivery at once, per worker process

[delivery]
# Mail for other domains: found by DNS MX records and sent over SMTP.
relayhost = ""                  # a smart host for everything: "[smtp.isp.test]:587"
relayhost_username = ""         # AUTH to the smart host, if it wants a login
relayhost_password = ""
smtp_port = 25                  # the port of other domains' mail hosts
bind_address = ""               # the local address to send from; "": any
helo_name = ""                  # the EHLO name; "": the hostname
nameservers = []                # ["192.0.2.53:53"]; []: the system's (/etc/resolv.conf)
dns_timeout = 10.0
connect_timeout = 30.0
command_timeout = 300.0
tls = "may"                     # STARTTLS: "may" (when offered), "must", "none"
tls_must_domains = []           # domains that must be reached over TLS
max_per_destination = 20        # simultaneous connections to one domain
max_messages_per_connection = 100   # messages over one connection before a new one
max_mx_addresses = 5            # addresses tried per attempt (RFC 5321 §5.1)

[dkim]
# DKIM signatures on mail leaving for other domains (RFC 6376).
sign = true                     # sign when the sender's domain has a key
selector = "postoffice"         # publish SELECTOR._domainkey.DOMAIN: see `postoffice dkim`
keys_dir = "etc/dkim"           # DOMAIN.key per signing domain (`postoffice dkim keygen`)

[pop3]
# Limits and policy of the POP3 server (defaults after Dovecot's and RFC 1939).
idle_timeout = 600.0            # seconds without a command (RFC 1939: 10 minutes at least)
max_line_length = 1024          # octets per command line (RFC 2449: 255 at least)
max_connections_per_client = 10 # simultaneous, per client address
max_errors = 20                 # bad commands, then the session is closed
plaintext_auth_on_loopback = false  # USER/PASS and AUTH without TLS from this host only
login_failure_delay = 2.0       # seconds a failed login waits, doubled per failure...
login_failure_delay_max = 15.0  # ...per client address, up to this
# expire = "NEVER"              # advertise CAPA EXPIRE (days, or NEVER)
# login_delay = 300             # advertise CAPA LOGIN-DELAY (seconds)

[imap]
# Limits and policy of the IMAP server (defaults after Dovecot's and RFC 9051).
idle_timeout = 1800.0           # seconds without a command outside IDLE (RFC 9051: 30 min at least)
max_connections_per_client = 10 # simultaneous, per client address
plaintext_auth_on_loopback = false  # LOGIN and AUTHENTICATE without TLS from this host only
login_failure_delay = 2.0       # seconds a failed login waits, doubled per failure...
login_failure_delay_max = 15.0  # ...per client address, up to this
append_limit = 52428800         # octets: the largest message APPEND takes (APPENDLIMIT)
max_bad_before_login = 3        # invalid commands, then BYE
max_bad_after_login = 20

[directory]
database = "lib/postoffice/directory.sqlite3"   # accounts and domains (SQLite)
detail_separator = "+"      # user+detail@domain is delivered to user@domain
"""

TABLE_TEMPLATES: dict[str, str] = {
    "local-host-names": """\
# local-host-names: the names this host accepts mail for, one per line.
# Mail for these domains is delivered here. The domains added with
# `postoffice domain add` are local too, and so is the host name itself.
#
# example.net
""",
    "access": """\
# access: who may connect, send and relay. KEY  ACTION, one rule per line.
# Keys: Connect:IP-or-prefix-or-host, From:address-or-domain, To:address-or-domain,
#       or a bare key for all three. The longest, most specific key wins.
# Actions: OK, RELAY, REJECT, DISCARD, SKIP, ERROR:5.7.1:550 text, ERROR:550 text
#
# Connect:192.168.1        RELAY
# From:spammer.test        REJECT
# To:partner.test          RELAY
""",
    "aliases": """\
# aliases: local names that forward elsewhere.  name: target, target, ...
# A line that starts with white space continues the previous one.
# Targets: a local name, an address, :include:/path/to/list
# ("|command" and "/file" only when enabled in postoffice.toml).
#
# staff: alice, bob, carol@other.test
#
# RFC 5321 §4.5.1: every mail domain must accept mail for postmaster.
# Point root at the account that reads it, e.g.  root: alice
postmaster: root
abuse: postmaster
""",
    "virtusertable": """\
# virtusertable: addresses in virtual domains and where they go.
# info@example.com    alice              (a local name or an address)
# @example.net        bob                (catch-all for a domain)
# @example.org        %1@example.com     (%1 is the local part)
# @example.org        error:nouser User unknown
""",
    "mailertable": """\
# mailertable: how mail for a domain leaves this host, overriding MX records.
# other.test          smtp:[mail.other.test]      (brackets: no MX lookup)
# .other.test         smtp:gateway.other.test     (a leading dot: subdomains)
# bad.test            error:5.7.0:550 No mail for this domain
""",
    "genericstable": """\
# genericstable: rewrite the sender of outgoing mail.
# alice               alice.smith@example.com
# bob@host.example.test   bob@example.com
""",
}
