"""The HMAC key bootstrap tokens are signed with, kept in citadel's state dir (0600)."""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Protocol

from services.citadel.errors import CaLoadError
from services.citadel.state_dir import StateDir

TOKEN_KEY = "token-key"
KEY_BYTES = 32


class TokenKeyStore(Protocol):
    def load_or_create(self) -> bytes: ...


class FileTokenKeyStore:
    def __init__(self, state_dir: Path) -> None:
        self.state = StateDir(state_dir)

    def load_or_create(self) -> bytes:
        # Locked: citadel and `mint-token` may both be first to need the key.
        with self.state.locked():
            stored = self.state.read(TOKEN_KEY)
            if stored is not None:
                try:
                    key = base64.b64decode(stored.strip(), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise CaLoadError(f"{self.state.file(TOKEN_KEY)} is not base64") from exc
                if len(key) < KEY_BYTES:
                    raise CaLoadError(f"{self.state.file(TOKEN_KEY)} holds {len(key)} bytes, fewer than "
                                      f"{KEY_BYTES}; remove it to make a new key (tokens minted with it stop working)")
                return key
            key = secrets.token_bytes(KEY_BYTES)
            self.state.write(TOKEN_KEY, base64.b64encode(key) + b"\n", private=True)
            return key
