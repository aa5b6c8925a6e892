"""Remove residents' personal data from text before it leaves for a language model.

What counts as a phone or ID number is decided by :func:`bot.core.privacy.mask` (one
definition for logs and prompts); its masked forms are then replaced whole by a
placeholder, because a masked number (138****5678) still says too much to a third party.

Two kinds of text are treated differently:
- the resident's own words (question, follow-up): phones, ID numbers, any other long
  digit run (bank cards, ID numbers typed with spaces) and a name after 我叫/我是 go;
- knowledge passages: they are public documents, and their service phone numbers
  (热线 022-2800-5566) are often the answer, so phones stay; only ID-number-shaped
  runs go, since no public notice needs one.
"""

from __future__ import annotations

import re

from bot.core.privacy import mask

PHONE = "[电话]"
ID_NUMBER = "[证件号]"
NUMBER = "[号码]"
NAME = "[姓名]"

_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ＋－", "0123456789Xx+-")
# the masked forms bot.core.privacy.mask produces
_MASKED_ID = re.compile(r"\d{3}\*{11}[\dXx]")
_MASKED_MOBILE = re.compile(r"1[3-9]\d\*{4}\d{4}")
_MASKED_LANDLINE = re.compile(r"0\d{2,3}-\*{4}-\d{4}")
# what mask does not know: long digit runs, possibly typed in groups (6222 0212 3456 7890)
_LONG_DIGITS = re.compile(r"(?<!\d)\d(?:[ \-]?\d){6,}(?!\d)")
_ID_SHAPED = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dA-Za-z])")
# common surnames: 我是王秀兰 names a person, 我是低保户 does not
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾萧肖田董袁潘蒋蔡余杜叶程苏魏吕丁"
             "任沈姚卢姜崔钟谭陆汪范金廖贾夏韦付傅方邹孟熊秦邱尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃戴莫孔汤")
_CALLED = re.compile(r"(我叫|我的名字是|我名字叫|本人叫)\s*([\u4e00-\u9fff]{2,3})")
_I_AM = re.compile(rf"(我是|本人是)\s*([{_SURNAMES}][\u4e00-\u9fff]{{1,2}})(?=[，,。.!！?？\s、；;]|$)")


def redact_resident_text(text: str) -> str:
    """Remove phones, ID numbers, other long digit runs and self-introduced names from a resident's words."""
    if not text:
        return text
    text = text.translate(_FULL_WIDTH)
    text = _placeholders(mask(text))
    text = _LONG_DIGITS.sub(NUMBER, text)
    text = _CALLED.sub(lambda m: m.group(1) + NAME, text)
    return _I_AM.sub(lambda m: m.group(1) + NAME, text)


def redact_passage(text: str) -> str:
    """Remove ID numbers from a public document; its phone numbers are public service numbers and stay."""
    if not text:
        return text
    return _ID_SHAPED.sub(ID_NUMBER, text.translate(_FULL_WIDTH))


def _placeholders(masked: str) -> str:
    masked = _MASKED_ID.sub(ID_NUMBER, masked)
    masked = _MASKED_MOBILE.sub(PHONE, masked)
    return _MASKED_LANDLINE.sub(PHONE, masked)
