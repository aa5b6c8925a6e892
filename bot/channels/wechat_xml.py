"""Read WeChat's callback XML safely and write the XML WeChat expects back.

WeChat sends a flat ``<xml>`` document of a few dozen fields. defusedxml is not
a dependency of this project, so the parser is expat used directly, with every
door of the DTD shut: a body mentioning ``<!DOCTYPE`` or ``<!ENTITY`` is refused
before parsing, the document is parsed as UTF-8 whatever it declares (a UTF-16
body cannot smuggle a DTD past that check), and handlers abort the parse should
a doctype, an entity declaration or an external entity still appear. Without a
DTD no entity can be defined, so external entities (XXE) and entity expansion
("billion laughs") cannot happen. Size, depth and element count are bounded.
"""

from __future__ import annotations

import re
from xml.parsers import expat

from bot.channels.wechat_errors import BodyTooLarge, XmlError

MAX_BODY = 64 * 1024  # WeChat's callbacks are a few KB; an encrypted one of a 2 KB text is ~4 KB
MAX_DEPTH = 4
MAX_ELEMENTS = 256
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
# Characters XML 1.0 cannot carry even in CDATA; a reply containing one would be refused by WeChat.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def parse_message(body: bytes) -> dict[str, str]:
    """The fields of a WeChat XML message (children of <xml>, as text); XmlError when it is not one."""
    if len(body) > MAX_BODY:
        raise BodyTooLarge(f"body of {len(body)} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XmlError("the body is not UTF-8") from exc
    if _DTD.search(text):
        raise XmlError("DTDs and entity declarations are not accepted")
    return _Reader().read(text)


class _Reader:
    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.depth = 0
        self.count = 0
        self.root = ""
        self.current: str | None = None
        self.buffer: list[str] = []

    def read(self, text: str) -> dict[str, str]:
        parser = expat.ParserCreate("UTF-8")  # forced: the document's own encoding declaration is ignored
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._refuse
        parser.EntityDeclHandler = self._refuse
        parser.UnparsedEntityDeclHandler = self._refuse
        parser.ExternalEntityRefHandler = self._refuse
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        try:
            parser.Parse(text.encode("utf-8"), True)
        except expat.ExpatError as exc:
            raise XmlError(f"not well-formed XML ({expat.errors.messages.get(exc.code, exc.code)})") from exc
        if self.root != "xml":
            raise XmlError("the root element is not <xml>")
        return self.fields

    @staticmethod
    def _refuse(*_args) -> None:
        raise XmlError("DTDs and entities are not accepted")

    def _start(self, name: str, _attrs) -> None:
        self.depth += 1
        self.count += 1
        if self.depth > MAX_DEPTH or self.count > MAX_ELEMENTS:
            raise XmlError("the document is nested too deeply or has too many elements")
        if self.depth == 1:
            self.root = name
        elif self.depth == 2:
            if name in self.fields:
                raise XmlError(f"the field {name} appears twice")  # which one was signed?
            self.current, self.buffer = name, []

    def _end(self, name: str) -> None:
        if self.depth == 2 and self.current is not None:
            self.fields[self.current] = "".join(self.buffer).strip()
            self.current = None
        self.depth -= 1

    def _text(self, data: str) -> None:
        if self.depth == 2 and self.current is not None:
            self.buffer.append(data)


def _cdata(value: str) -> str:
    value = _NOT_XML.sub("", value)
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render_xml(fields: dict[str, str | int]) -> str:
    """A flat <xml> document: strings as CDATA, integers as they are."""
    parts = ["<xml>"]
    for name, value in fields.items():
        inner = str(value) if isinstance(value, int) else _cdata(value)
        parts.append(f"<{name}>{inner}</{name}>")
    parts.append("</xml>")
    return "".join(parts)


def text_reply(to_user: str, from_user: str, created: int, content: str) -> str:
    """A passive text reply (the same layout for official accounts and WeCom)."""
    return render_xml({"ToUserName": to_user, "FromUserName": from_user, "CreateTime": created,
                       "MsgType": "text", "Content": content})


def encrypted_envelope(encrypt: str, signature: str, timestamp: str, nonce: str) -> str:
    """The envelope of an encrypted passive reply."""
    return render_xml({"Encrypt": encrypt, "MsgSignature": signature, "TimeStamp": int(timestamp), "Nonce": nonce})
