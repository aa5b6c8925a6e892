"""WeChat's signature and message encryption, checked against Tencent's published sample values.

The samples come from Tencent's message-encryption sample code (WXBizMsgCrypt in
Java, C#, Python) and the WeCom callback documentation; the wechatpy vector is
from wechatpy's own test suite. Timestamps in them are from 2014, so these tests
call the crypto functions directly; the route is driven in tests/integration.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.channels.wechat_crypto import MessageCrypto, aes_key_from, sign, signature_matches
from bot.channels.wechat_errors import DecryptError
from bot.channels.wechat_xml import parse_message
from bot.errors import ConfigError

# Official account sample (WXBizMsgCrypt samples): Token, EncodingAESKey and AppID.
MP_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MP_APPID = "wxb11529c136998cb6"

# WeCom sample (WXBizMsgCrypt samples and the callback documentation).
WECOM_TOKEN = "QDG6eK"
WECOM_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_CORP = "wx5823bf96d3bd56c7"
WECOM_ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
WECOM_MESSAGE = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
    "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwG"
    "c2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9"
    "EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0"
    "lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)


def test_encrypting_the_official_sample_with_its_random_prefix_gives_the_published_ciphertext():
    crypto = MessageCrypto(MP_KEY, MP_APPID)

    encrypted = crypto.encrypt("我是中文abcd123", random_prefix=b"aaaabbbbccccdddd")

    assert encrypted == ("jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==")


def test_encrypting_wechatpys_sample_reply_gives_its_ciphertext_and_signature():
    crypto = MessageCrypto("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a")
    reply = ("<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
             "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
             "<ToUserName><![CDATA[messense]]></ToUserName>\n"
             "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>")

    encrypted = crypto.encrypt(reply, random_prefix=b"1234567890123456")

    assert encrypted == (
        "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtOb"
        "vesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8"
        "NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O"
        "5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3")
    assert sign("123456", "1411525903", "461056294", encrypted) == "407518b7649e86ef23978113f92d27afa9296533"


def test_the_wecom_url_verification_sample_verifies_and_decrypts_to_its_echostr():
    assert signature_matches("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", WECOM_TOKEN, "1409659589", "263014780",
                             WECOM_ECHO)
    assert MessageCrypto(WECOM_KEY, WECOM_CORP).decrypt(WECOM_ECHO) == b"1616140317555161061"


def test_the_wecom_message_sample_verifies_and_decrypts_to_hello():
    assert signature_matches("477715d11cdb4164915debcba66cb864d751f3e6", WECOM_TOKEN, "1409659813", "1372623149",
                             WECOM_MESSAGE)

    fields = parse_message(MessageCrypto(WECOM_KEY, WECOM_CORP).decrypt(WECOM_MESSAGE))

    assert fields["Content"] == "hello"
    assert fields["FromUserName"] == "mycreate"
    assert fields["MsgId"] == "4561255354251345929"


def test_the_official_account_safe_mode_sample_decrypts_byte_for_byte():
    encrypted = (
        "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9F"
        "rXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt"
        "+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0"
        "EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=")
    assert signature_matches("5d197aaffba7e9b25a30732f161a50dee96bd5fa", "spamtest", "1409735669", "1320562132",
                             encrypted)

    plain = MessageCrypto(MP_KEY, "wx2c2769f8efd9abc2").decrypt(encrypted)

    assert plain == (b"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
                     b"<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
                     b"<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
                     b"<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>")


def test_the_plaintext_layout_is_prefix_length_message_receiver_and_padding_to_32_bytes():
    message = "3号楼暖气不热".encode()
    encrypted = MessageCrypto(MP_KEY, MP_APPID).encrypt(message, random_prefix=b"0123456789abcdef")

    key = base64.b64decode(MP_KEY + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()

    body = b"0123456789abcdef" + struct.pack(">I", len(message)) + message + MP_APPID.encode()
    pad = 32 - len(body) % 32
    assert plain == body + bytes([pad]) * pad


def test_an_aligned_plaintext_gets_a_whole_block_of_padding():
    crypto = MessageCrypto(MP_KEY, MP_APPID)
    message = b"x" * (64 - 16 - 4 - len(MP_APPID))  # prefix + length + message + appid = 64 bytes exactly

    raw = base64.b64decode(crypto.encrypt(message, random_prefix=b"p" * 16))

    assert len(raw) == 96
    assert crypto.decrypt(base64.b64encode(raw).decode()) == message


def test_a_fresh_random_prefix_makes_each_ciphertext_different():
    crypto = MessageCrypto(MP_KEY, MP_APPID)

    first, second = crypto.encrypt("您好"), crypto.encrypt("您好")

    assert first != second
    assert crypto.decrypt(first) == crypto.decrypt(second) == "您好".encode()


def test_the_signature_is_sha1_of_the_sorted_parts():
    parts = sorted(["pamtest", "1409304348", "xxxxxx"])

    assert sign("pamtest", "1409304348", "xxxxxx") == hashlib.sha1("".join(parts).encode()).hexdigest()


@pytest.mark.parametrize("given", ["", None, "0" * 40, "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4", "签名"])
def test_a_wrong_or_missing_signature_does_not_match(given):
    assert not signature_matches(given, WECOM_TOKEN, "1409659589", "263014780", WECOM_ECHO)


def test_a_message_for_another_appid_is_refused():
    encrypted = MessageCrypto(MP_KEY, "wx_someone_else").encrypt("<xml/>")

    with pytest.raises(DecryptError, match="another"):
        MessageCrypto(MP_KEY, MP_APPID).decrypt(encrypted)


def test_a_tampered_ciphertext_is_refused():
    raw = bytearray(base64.b64decode(MessageCrypto(MP_KEY, MP_APPID).encrypt("<xml>3号楼</xml>")))
    raw[-1] ^= 0x55  # the last block decrypts to garbage, its padding byte included

    with pytest.raises(DecryptError):
        MessageCrypto(MP_KEY, MP_APPID).decrypt(base64.b64encode(bytes(raw)).decode())


@pytest.mark.parametrize("encrypted", ["", "不是base64", "YWJj", "AAAAAAAAAAAAAAAAAAAAAA=="])
def test_garbage_is_refused_with_decrypt_error(encrypted):
    with pytest.raises(DecryptError):
        MessageCrypto(MP_KEY, MP_APPID).decrypt(encrypted)


@pytest.mark.parametrize("key", ["", "abc", MP_KEY + "H", "!" * 43])
def test_a_malformed_encoding_aes_key_is_a_config_error(key):
    with pytest.raises(ConfigError):
        aes_key_from(key)


def test_encryption_needs_a_receiver_id():
    with pytest.raises(ConfigError, match="app_id"):
        MessageCrypto(MP_KEY, "")
