"""Encryption at rest of users' exchange API keys (Fernet: AES-128-CBC + HMAC-SHA256).

`XRAY_RUNTIME_FERNET_KEY` holds one key, or a comma-separated list during a rotation: the first key
encrypts, every key decrypts (`MultiFernet`), so old rows stay readable until they are re-encrypted
with `KeyVault.rotate` (`UserStore.reencrypt`). Key material never appears in a repr, a log line or an
exception message: errors name the setting, the key's position in the list, or the record that failed.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from xray_core.errors import ConfigError, XrayError
from xray_runtime.settings import RuntimeSettings

ENV_VAR = "XRAY_RUNTIME_FERNET_KEY"
_KEYGEN_HINT = f"set {ENV_VAR} (generate one with `xray users keygen`)"


class DecryptionError(XrayError):
    """A stored secret cannot be decrypted: the wrong key is configured, or the stored text is corrupt."""


def generate_key() -> str:
    """A fresh random Fernet key (32 bytes, url-safe base64) as text."""
    return Fernet.generate_key().decode("ascii")


class KeyVault:
    """Encrypts and decrypts short secrets with the runtime's Fernet key(s)."""

    def __init__(self, keys: SecretStr | str | None) -> None:
        raw = keys.get_secret_value() if isinstance(keys, SecretStr) else keys
        # Whitespace around list items is forgiven: keys pasted from a shell or .env often carry it.
        parts = [part.strip() for part in (raw or "").split(",") if part.strip()]
        if not parts:
            raise ConfigError(f"no Fernet key: {ENV_VAR} is not set", _KEYGEN_HINT)
        fernets: list[Fernet] = []
        for position, part in enumerate(parts, start=1):
            try:
                fernets.append(Fernet(part))
            except (ValueError, TypeError):
                # The exception text from cryptography is generic, but it is dropped anyway (`from None`)
                # so that the offending key can never leak through a chained traceback.
                raise ConfigError(
                    f"{ENV_VAR}: key {position} of {len(parts)} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes)",
                    _KEYGEN_HINT,
                ) from None
        self._count = len(fernets)
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: RuntimeSettings | None = None) -> KeyVault:
        """The vault of `RuntimeSettings.fernet_key` (read from the environment when not given)."""
        return cls((settings or RuntimeSettings()).fernet_key)

    @property
    def key_count(self) -> int:
        """How many keys decrypt (1 outside a rotation)."""
        return self._count

    def encrypt(self, plaintext: str) -> str:
        """The Fernet token of `plaintext` under the first (newest) key."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, *, record: str = "a stored secret") -> str:
        """The plaintext of `token`; `record` (e.g. "user 'alice' api_key") names what failed, if it does."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, AttributeError):
            raise DecryptionError(
                f"cannot decrypt {record}: {ENV_VAR} does not hold the key it was encrypted with, "
                "or the stored value is corrupt",
                f"set {ENV_VAR} to that key (during a rotation: new,old), or re-add the credentials",
            ) from None

    def rotate(self, token: str, *, record: str = "a stored secret") -> str:
        """`token` re-encrypted under the first key (it may have been encrypted under any of them)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, AttributeError):
            raise DecryptionError(
                f"cannot re-encrypt {record}: none of the keys in {ENV_VAR} decrypts it",
                f"keep the old key in {ENV_VAR} (new,old) until every record is re-encrypted",
            ) from None

    def __repr__(self) -> str:
        return f"KeyVault(<{self._count} key{'s' if self._count != 1 else ''}>)"
