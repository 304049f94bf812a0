"""The network-name types: ip(), dnsName(), email() and uri() conversions, and the equality
Mixer defines on each (mixer/pkg/lang/externs.go).

DNS names compare case-insensitively and ignore a trailing dot; e-mail addresses compare
their local parts exactly and their domains as DNS names; http(s) URIs compare their hosts
as DNS names and their schemes case-insensitively; an IPv4 address equals its IPv4-mapped
IPv6 form (Go's net.IP.Equal).
"""

from __future__ import annotations

import contextlib
import encodings.idna
import ipaddress
import re
import unicodedata
from urllib.parse import SplitResult, urlsplit

from libs.cexl._errors import EvaluationError
from libs.cexl._types import IpAddress

_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010FFFF]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_ADDR_SPEC = re.compile(rf'({_DOT_ATOM}|"(?:[^"\\\r\n]|\\.)*")@({_DOT_ATOM})\Z')
_QUOTED_PAIR = re.compile(r"\\(.)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def to_ip(text: str) -> IpAddress:
    # Go's net.ParseIP takes no IPv6 zone ("fe80::1%eth0"); Python's ipaddress does.
    if "%" not in text:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            pass
    raise EvaluationError(f"could not convert {text} to IP_ADDRESS")


def ip_equal(a: IpAddress, b: IpAddress) -> bool:
    return _ip_key(a) == _ip_key(b)


def _ip_key(address: IpAddress) -> IpAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _dns_error(text: str, label: str) -> EvaluationError:
    return EvaluationError(f"error converting '{text}' to dns name: 'idna: invalid label \"{label}\"'")


def dns_name(text: str) -> str:
    """`text` if it is a valid DNS name (LDH labels of 1-63 characters, IDNs allowed, 253
    characters at most, one trailing dot allowed)."""
    name = text[:-1] if text.endswith(".") else text
    ascii_length = 0
    for label in name.split("."):
        if label.isascii():
            lowered = label.lower()
            if not _LDH_LABEL.match(label) or (lowered[2:4] == "--" and not lowered.startswith("xn--")):
                raise _dns_error(text, label)
            if lowered.startswith("xn--"):
                try:
                    label[4:].encode("ascii").decode("punycode")
                except UnicodeError:
                    raise _dns_error(text, label) from None
            encoded = label
        else:
            try:
                encoded = encodings.idna.ToASCII(label).decode("ascii")
            except UnicodeError:
                raise _dns_error(text, label) from None
        if len(encoded) > 63:
            raise _dns_error(text, label)
        ascii_length += len(encoded) + 1
    if ascii_length - 1 > 253:
        raise EvaluationError(f"error converting '{text}' to dns name: 'idna: name too long'")
    return text


def _dns_key(name: str) -> str:
    if name.endswith("."):
        name = name[:-1]
    labels = []
    for label in name.split("."):
        decoded = label
        if label.lower().startswith("xn--"):
            with contextlib.suppress(UnicodeError):
                decoded = label[4:].encode("ascii").decode("punycode")
        labels.append(unicodedata.normalize("NFC", decoded.lower()))
    return ".".join(labels)


def dns_equal(a: str, b: str) -> bool:
    return a == b or _dns_key(a) == _dns_key(b)


def _email_parts(text: str) -> tuple[str, str] | None:
    """(local part, domain) of an RFC 5322 address without a display name; None otherwise."""
    spec = text.strip()
    if spec.startswith("<") and spec.endswith(">"):
        spec = spec[1:-1].strip()
    found = _ADDR_SPEC.match(spec)
    if found is None:
        return None
    local, domain = found.groups()
    if local.startswith('"'):
        local = _QUOTED_PAIR.sub(r"\1", local[1:-1])
    return local, domain


def email(text: str) -> str:
    parts = _email_parts(text)
    if parts is None:
        reason = "display names are not allowed" if "<" in text else "not an addr-spec"
        raise EvaluationError(f"error converting '{text}' to e-mail: '{reason}'")
    try:
        dns_name(parts[1])
    except EvaluationError as exc:
        raise EvaluationError(f"error converting '{text}' to e-mail: '{exc}'") from None
    return text


def email_equal(a: str, b: str) -> bool:
    first, second = _email_parts(a), _email_parts(b)
    if first is None or second is None:
        raise EvaluationError(f"cannot compare e-mail addresses '{a}' and '{b}'")
    return first[0] == second[0] and dns_equal(first[1], second[1])


def _split_uri(text: str) -> SplitResult:
    if text == "":
        raise EvaluationError("error converting string to uri: empty string")
    problem = None
    if text.startswith(":"):
        problem = "missing protocol scheme"
    elif _CONTROL.search(text):
        problem = "invalid control character in URL"
    elif _BAD_ESCAPE.search(text):
        problem = "invalid URL escape"
    else:
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 -- urlsplit checks the port only when it is read
            return parts
        except ValueError as exc:
            problem = str(exc)
    raise EvaluationError(f"error converting string to uri '{text}': '{problem}'")


def uri(text: str) -> str:
    _split_uri(text)
    return text


def uri_equal(a: str, b: str) -> bool:
    first, second = _split_uri(a), _split_uri(b)
    if first.scheme.lower() != second.scheme.lower():
        return False
    if first.scheme.lower() in ("http", "https"):
        return (dns_equal(first.hostname or "", second.hostname or "") and first.port == second.port
                and first.username == second.username and first.password == second.password
                and (first.path, first.query, first.fragment) == (second.path, second.query, second.fragment))
    return (first.netloc, first.path, first.query, first.fragment) == (
        second.netloc, second.path, second.query, second.fragment)
