"""DKIM signing of outgoing mail (RFC 6376) and the keys it signs with.

Owns the key files (``KEYS_DIR/DOMAIN.key``: PEM, RSA, mode 0600, one per
signing domain), the choice of header fields to sign, and the public key's
DNS TXT value. The canonicalisation and the cryptography are dkimpy's
(DESIGN.md §3); this module is the one boundary where its exceptions, and
those of ``cryptography`` about a key file, become ``DkimError``.

Invariants:

- A key file name is built only from a domain that passed
  ``canonical_domain`` and is not an address literal, so no input becomes a
  path unchecked (DESIGN.md §5).
- A key file is written whole or not at all (temporary file, fsync, rename
  or link), with mode 0600 from its creation; an existing key is replaced
  only when asked.
- ``DkimSigner`` re-reads a key when the file changes (inode, mtime or size)
  and never signs with a key it could not load: the error is raised for the
  caller to log, and the message goes out unsigned.
- The signature is computed over the message with CRLF line ends, as the
  SMTP client sends it (RFC 5321 §2.3.8), whatever line ends it was given.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postoffice.core.address import canonical_domain
from postoffice.core.errors import AddressError, PostofficeError

KEY_SUFFIX = ".key"
DEFAULT_BITS = 2048
MIN_BITS = 1024  # RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits
MAX_BITS = 4096  # larger keys outgrow what DNS providers and verifiers accept

# RFC 6376 §5.4.1: the header fields that SHOULD be signed when present.
# Those a message has are signed once per instance (§5.4.2); absent ones are
# left out so that a list adding, say, Reply-To does not break the signature.
SIGNED_HEADERS = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "in-reply-to",
    "references",
    "resent-date",
    "resent-from",
    "resent-to",
    "resent-cc",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
)

# Fields a message has at most once (RFC 5322 §3.6, RFC 2045 §4-6). When
# present they are signed one extra time, which signs their absence as a
# second instance: nobody can add a second From or Subject that a reader
# would be shown instead (RFC 6376 §5.4.2 and §8.15). From is always signed.
OVERSIGNED_HEADERS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "to",
        "cc",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)

# RFC 6376 §3.1: a selector is one or more labels separated by dots.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext
_LINE_END = re.compile(rb"\r?\n")


class DkimError(PostofficeError):
    """DKIM signing or a DKIM key failed: names the key file or the fault in the message."""


def key_file(keys_dir: Path, domain: str) -> Path:
    """Where the key of ``domain`` lives: ``keys_dir/DOMAIN.key``, DOMAIN canonical.

    Raises ``DkimError`` for a string that is not a domain (an address
    literal cannot sign: DKIM's d= is a domain name, RFC 6376 §3.5).
    """
    try:
        name = canonical_domain(domain)
    except AddressError as exc:
        raise DkimError(f"not a signing domain: {exc}") from exc
    if name.startswith("["):
        raise DkimError(f"not a signing domain: {domain!r} is an address literal")
    return keys_dir / f"{name}{KEY_SUFFIX}"


def _load_private_key(path: Path, data: bytes) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DkimError(f"{path}: not a usable DKIM key (PEM, RSA, no passphrase): {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimError(f"{path}: a DKIM key must be RSA (RFC 8301), not {type(key).__name__}")
    if key.key_size < MIN_BITS:
        raise DkimError(f"{path}: a {key.key_size}-bit key is too short (RFC 8301 §3.2)")
    return key


def _read_private_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DkimError(f"{path}: no such DKIM key") from exc
    except OSError as exc:
        raise DkimError(f"{path}: cannot read the DKIM key: {exc.strerror}") from exc
    return _load_private_key(path, data)


def dns_txt_record(key_path: Path) -> str:
    """The TXT value that publishes the public half of the key at ``key_path``.

    ``v=DKIM1; k=rsa; p=BASE64`` with p= the SubjectPublicKeyInfo in DER
    (RFC 6376 §3.6.1), to be published at ``SELECTOR._domainkey.DOMAIN``.
    """
    public = _read_private_key(key_path).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"


def generate_key(
    keys_dir: Path, domain: str, *, bits: int = DEFAULT_BITS, replace: bool = False
) -> Path:
    """Write a new RSA key for ``domain`` as ``keys_dir/DOMAIN.key`` (mode 0600); return its path.

    Refuses (``DkimError``) to overwrite an existing key unless ``replace``:
    mail signed with the old key and still in transit fails once the DNS
    record changes, so rotating is a decision, never an accident.
    """
    if not MIN_BITS <= bits <= MAX_BITS:
        raise DkimError(f"key size must be {MIN_BITS} to {MAX_BITS} bits, not {bits}")
    target = key_file(keys_dir, domain)
    if target.exists() and not replace:
        raise DkimError(f"{target}: a DKIM key exists already; use --replace to make a new one")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    # PKCS#1 ("BEGIN RSA PRIVATE KEY"), as opendkim-genkey writes it.
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    try:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DkimError(f"{keys_dir}: cannot make the DKIM key folder: {exc.strerror}") from exc
    try:
        _write_key(keys_dir, target, pem, replace=replace)
    except FileExistsError as exc:
        raise DkimError(
            f"{target}: a DKIM key exists already; use --replace to make a new one"
        ) from exc
    except OSError as exc:
        raise DkimError(f"{target}: cannot write the DKIM key: {exc.strerror or exc}") from exc
    return target


def _write_key(keys_dir: Path, target: Path, pem: bytes, *, replace: bool) -> None:
    temporary = keys_dir / f".{target.name}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)  # left by a crashed process that had our pid
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # whatever the umask made of the mode
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # raises rather than overwrite a key made meanwhile
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(keys_dir)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def with_crlf(message: bytes) -> bytes:
    """``message`` with every line ending in CRLF, as SMTP carries it (RFC 5321 §2.3.8)."""
    return _LINE_END.sub(b"\r\n", message)


def header_names(message: bytes) -> list[str]:
    """The field names of ``message``'s header section, lower-cased, in order."""
    head = message.split(b"\r\n\r\n", 1)[0] if not message.startswith(b"\r\n") else b""
    names = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation (RFC 5322 §2.2.3)
        name, colon, _ = line.partition(b":")
        if colon and _FIELD_NAME.fullmatch(name):
            names.append(name.decode("ascii").lower())
    return names


def headers_to_sign(names: list[str]) -> list[str]:
    """The h= list for a header section with these field names (RFC 6376 §5.4)."""
    chosen = []
    for name in SIGNED_HEADERS:
        count = names.count(name)
        if count and name in OVERSIGNED_HEADERS:
            count += 1
        chosen += [name] * count
    return chosen


@dataclass(frozen=True)
class _LoadedKey:
    stamp: tuple[int, int, int]  # (inode, mtime_ns, size) of the file read
    pem: bytes  # PKCS#1 PEM, the form dkimpy reads


class DkimSigner:
    """Signs mail for every domain that has a key in ``keys_dir``, with one selector.

    Keys are read when first needed and kept; a key file that changes
    (replaced, rewritten) is read again before the next signature.
    """

    def __init__(self, keys_dir: Path, selector: str):
        if not _SELECTOR.fullmatch(selector):
            raise DkimError(f"invalid DKIM selector {selector!r} (RFC 6376 §3.1)")
        self.keys_dir = keys_dir
        self.selector = selector
        self._keys: dict[str, _LoadedKey] = {}

    def _path(self, domain: str) -> Path | None:
        try:
            return key_file(self.keys_dir, domain)
        except DkimError:
            return None

    def can_sign(self, domain: str) -> bool:
        """Whether ``domain`` has a key file (whether it loads is found out by ``sign``)."""
        path = self._path(domain)
        return path is not None and path.is_file()

    def _key(self, path: Path) -> bytes | None:
        domain = path.name.removesuffix(KEY_SUFFIX)
        try:
            status = path.stat()
        except FileNotFoundError:
            self._keys.pop(domain, None)
            return None
        except OSError as exc:
            raise DkimError(f"{path}: cannot read the DKIM key: {exc.strerror}") from exc
        stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        loaded = self._keys.get(domain)
        if loaded is None or loaded.stamp != stamp:
            try:
                key = _read_private_key(path)
            except DkimError:
                self._keys.pop(domain, None)
                raise
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            loaded = _LoadedKey(stamp, pem)
            self._keys[domain] = loaded
        return loaded.pem

    def sign(self, message: bytes, domain: str) -> bytes | None:
        """The ``DKIM-Signature:`` field (folded, CRLF-terminated) to put before ``message``.

        None when ``domain`` has no key. ``DkimError`` when the key cannot be
        used or the message cannot be signed (no From field: RFC 6376 §5.4).
        """
        path = self._path(domain)
        if path is None:
            return None
        private_key = self._key(path)
        if private_key is None:
            return None
        wire = with_crlf(message)
        names = header_names(wire)
        if "from" not in names:
            raise DkimError("cannot sign a message without a From field (RFC 6376 §5.4)")
        signing_domain = path.name.removesuffix(KEY_SUFFIX)
        try:
            field: bytes = dkim.sign(
                wire,
                self.selector.encode("ascii"),
                signing_domain.encode("ascii"),
                private_key,
                include_headers=[name.encode("ascii") for name in headers_to_sign(names)],
                canonicalize=(b"relaxed", b"relaxed"),
            )
        except dkim.DKIMException as exc:
            raise DkimError(f"DKIM signing for {signing_domain} failed: {exc}") from exc
        return field
