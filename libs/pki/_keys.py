"""Key types Mizzen issues and accepts, by name: ec-p256 (default), ec-p384, rsa-2048/3072/4096."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from libs.pki._errors import UnsupportedKeyType

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class KeyType:
    name: str
    algorithm: str  # "ec" or "rsa"
    size: int  # curve size or modulus bits

    def generate(self) -> PrivateKey:
        if self.algorithm == "ec":
            return ec.generate_private_key(ec.SECP384R1() if self.size == 384 else ec.SECP256R1())
        # 65537 is the only public exponent anyone should use.
        return rsa.generate_private_key(public_exponent=65537, key_size=self.size)


KEY_TYPES: dict[str, KeyType] = {
    k.name: k for k in (
        KeyType("ec-p256", "ec", 256),
        KeyType("ec-p384", "ec", 384),
        KeyType("rsa-2048", "rsa", 2048),
        KeyType("rsa-3072", "rsa", 3072),
        KeyType("rsa-4096", "rsa", 4096),
    )
}


def parse_key_type(name: str) -> KeyType:
    try:
        return KEY_TYPES[name.strip().lower()]
    except KeyError:
        raise UnsupportedKeyType(f"key type {name!r} is not supported (use one of {', '.join(KEY_TYPES)})") from None


def generate_key(name: str) -> PrivateKey:
    return parse_key_type(name).generate()


_CURVES = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}


def describe_key(key: object) -> str:
    """A key's type name, as in KEY_TYPES ("ec-p256", "rsa-2048"), or what else it is ("rsa-1024", "ed25519")."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"ec-{_CURVES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"rsa-{key.key_size}"
    return type(key).__name__.removesuffix("PublicKey").removesuffix("PrivateKey").lower() or "unknown"
