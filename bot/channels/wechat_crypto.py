"""WeChat's callback signature and message encryption, after the documented protocol.

Signature: SHA-1 (hex) of the sorted, concatenated strings token, timestamp,
nonce and, for encrypted messages, the Encrypt field. Encryption (the
"safe mode" of official accounts, always for WeCom): AES-256-CBC with the key
base64-decoded from EncodingAESKey + "=" and the key's first 16 bytes as IV;
the plaintext is 16 random bytes + the message length (4 bytes, network order)
+ the message + the receiver id (AppID or CorpID), PKCS#7-padded to 32-byte
blocks; the ciphertext travels base64-encoded.

Written here rather than taken from wechatpy: its last stable release
(1.8.18, 2021; 2.x exists only as alphas) still carries Python 2 compatibility
(six), compares signatures with ``!=`` instead of in constant time, strips the
PKCS#7 padding without checking it, draws the random prefix from ``random``,
and its API client is synchronous (requests) where this server is asyncio.
The protocol is a hundred lines on ``cryptography``; the tests check it
against Tencent's published sample values and use wechatpy, as an independent
implementation, on the WeChat side.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.channels.wechat_errors import DecryptError
from bot.errors import ConfigError

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16
_RANDOM_ALPHABET = string.ascii_letters + string.digits


def sign(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    """The signature WeChat computes: sha1 of the sorted parts, concatenated."""
    parts = sorted([token, timestamp, nonce, *extra])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


def signature_matches(given: str | None, token: str, timestamp: str, nonce: str, *extra: str) -> bool:
    """Compare a received signature with the expected one in constant time."""
    if not given:
        return False
    expected = sign(token, timestamp, nonce, *extra)
    return hmac.compare_digest(given.strip().lower().encode("ascii", "replace"), expected.encode("ascii"))


def aes_key_from(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; ConfigError when it is not one."""
    key_text = (encoding_aes_key or "").strip()
    if len(key_text) != 43:
        raise ConfigError(f"the WeChat EncodingAESKey must have 43 characters, not {len(key_text)}")
    try:
        key = base64.b64decode(key_text + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("the WeChat EncodingAESKey is not valid base64") from exc
    if len(key) != 32:
        raise ConfigError("the WeChat EncodingAESKey does not decode to 32 bytes")
    return key


class MessageCrypto:
    """Encrypt and decrypt message bodies for one receiver (an official account's AppID or a CorpID)."""

    def __init__(self, encoding_aes_key: str, receiver_id: str):
        if not receiver_id:
            raise ConfigError("encrypted WeChat messages need wechat.app_id (the AppID, or the CorpID for WeCom)")
        self._key = aes_key_from(encoding_aes_key)
        self.receiver_id = receiver_id

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt(self, message: str | bytes, random_prefix: bytes | None = None) -> str:
        """The base64 ciphertext of a message; random_prefix (16 bytes) is for tests only."""
        body = message.encode("utf-8") if isinstance(message, str) else message
        prefix = random_prefix if random_prefix is not None else \
            "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(16)).encode("ascii")
        if len(prefix) != 16:
            raise ValueError("the random prefix has 16 bytes")
        plain = prefix + struct.pack(">I", len(body)) + body + self.receiver_id.encode("utf-8")
        pad = BLOCK - len(plain) % BLOCK  # a full block of padding when already aligned
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside a base64 ciphertext; DecryptError unless it is well formed and ours."""
        try:
            raw = base64.b64decode((encrypted or "").strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptError("the ciphertext is not base64") from exc
        if not raw or len(raw) % 16:
            raise DecryptError("the ciphertext is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
            raise DecryptError("bad padding")  # also what a wrong key usually produces
        content = plain[16:-pad]
        if len(content) < 4:
            raise DecryptError("the plaintext is too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise DecryptError("the stated message length exceeds the plaintext")
        message, receiver = content[4:4 + length], content[4 + length:]
        if not hmac.compare_digest(receiver, self.receiver_id.encode("utf-8")):
            raise DecryptError("the message is for another AppID/CorpID")
        return message
