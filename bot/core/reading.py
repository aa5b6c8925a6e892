"""Reading a resident's message for what it is, before using it: a question, a cancel, a correction, a refusal.

Residents do not fill forms. While a report is being taken they ask questions,
change their mind, correct themselves in words and decline to leave a number.
These readers are rules over the *form* of a message (question words, the verbs
of cancelling and correcting, the slot a correction names), not lists of
sentences; each is tested in tests/unit/test_reading.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.chinese import simplified

# -- questions ---------------------------------------------------------------
_QUESTION_WORDS = re.compile(
    r"[？?]|(吗|么|嘛|呢|不)[。！!~～\s]*$|(?<![不没])(?P<a>[\u4e00-\u9fff])[不没](?P=a)|怎么|怎样|如何|什么|啥|哪|谁(?!家)|多少|(?<![好这那十])几[点个天号岁年月次级钱块]|多久|多长|多大|多远|"
    r"能不能|可不可以|可以不可以|是不是|有没有|有无|是否|能否|为什么|为啥|咋|请问|想问|问一下|问下|问问|咨询|打听"
)
# "能不能派人来修" is a request in question form; so is the rhetoric of a complaint ("怎么还没人管").
_ASKS_FOR_ACTION = re.compile(
    r"(能不能|可不可以|能否|可否|可以|请|麻烦|快)(你们|社区|物业|网格员|工作人员)?.{0,4}"
    r"(派人|来人|来看|有人(上门|过来|来)|帮(我|她|他|我们|忙|着)|修|处理|解决|清理|管一管|管管|协调|疏通|更换|换一下)|"
    r"(怎么|为什么|为啥|咋)(还|一直|总是|老是)?(没|不)(人)?(来|修|管|处理|解决)|"
    r"(到底|究竟)(有没有人|管不管|修不修)|(有没有人|有人)管(吗|没|不|啊|呀)?[？?！!]*$|"
    # a problem happening now, and what to do about it: "楼上漏水到我家了怎么办"
    r"(坏|漏|渗|滴|堵|停|裂|塌|断|爆|淹|掉|不热|不亮|不通|没电|没水)[^？?]{0,20}(怎么办|咋办|怎么弄|怎么整)[呢啊呀吧？?！!。]*$"
)


def asks_for_action(text: str) -> bool:
    """A request or complaint put as a question: "能不能派人来修", "怎么还没人管", "漏水了怎么办"."""
    return bool(_ASKS_FOR_ACTION.search(simplified(text.strip())))


def looks_like_question(text: str) -> bool:
    """A question by its form: question words or a question mark, and not a request or complaint put as one."""
    text = simplified(text.strip())
    return bool(_QUESTION_WORDS.search(text)) and not _ASKS_FOR_ACTION.search(text)


_WILL_YOU = re.compile(r"(你们|社区|网格员|有人)?(能|会|可以)(管|处理|解决|来)(吗|不|么)|管不管|有用吗|有没有用|靠谱吗")


def asks_will_you_act(text: str) -> bool:
    """"你们能管吗" while a report is being taken: a worry to answer, not a policy question."""
    return bool(_WILL_YOU.search(simplified(text))) and len(text) <= 15


# -- cancelling in words -----------------------------------------------------
_CANCEL = re.compile(
    r"^(那|哦|噢|嗯|好吧|好的|行|那就)?[，,\s]*("
    r"算了|不用了|不需要了|不用麻烦|不麻烦|别麻烦|不报了|不用报了|别报了|先不报|不反映了|不登记了|先不登记|不提交了|先不提交|"
    r"不要了|取消|撤销|撤回|没事了|没事儿了|没关系了|不弄了|"
    r"(已经|刚刚|刚才|现在)?(自己)?(修好|弄好|解决|处理好|好|没事|恢复|通|来电|来水|热|开走|走|停)了"
    r")"
)


def is_cancel(text: str) -> bool:
    """The resident calls the report off in words: 算了 / 不用了 / 不报了 / 已经修好了 / 车已经开走了."""
    text = simplified(text.strip())
    if len(text) > 40:
        return False
    if _CANCEL.search(text):
        return True
    # "不用了，车已经开走了", "当我没说吧", "先搁着吧，改天再说", "…给通开了，没事了": anywhere in a short message
    return bool(_CANCEL_ANYWHERE.search(text)) or \
        bool(re.search(r"(已经|刚|刚刚)(有人)?[^，。]{0,6}(修好|弄好|解决|处理好|通开|弄通|好)了|没事了$", text)
             and len(text) <= 30)


_CANCEL_ANYWHERE = re.compile(r"算了|不用了|不需要了|不报了|不用报了|不提交了|先不提交|取消吧|不用麻烦|当我没说|就当没说|"
                              r"改天再说|以后再说|回头再说|先搁着|先放着|先放一放|不用管了|别管了")


def after_cancel(text: str) -> str:
    """What follows the words that call a report off: "算了先不说这个，我想问问…" -> "我想问问…"."""
    found = None
    for found in _CANCEL_ANYWHERE.finditer(simplified(text)):
        pass
    rest = text[found.end():] if found else ""
    return re.sub(r"^[，,。！!\s]*(先不说这个|不说这个了|不说这个|先不说了)?[，,。！!\s]*", "", rest).strip()


# -- corrections in words ----------------------------------------------------
_CORRECTION = re.compile(r"写错|说错|打错|填错|输错|搞错|弄错|记错|错了|不对|更正|改成|改为|改一下|换成|应该是|其实是|是.{0,12}才对")
_SLOT_WORDS = {
    "phone": re.compile(r"电话|号码|手机|联系方式"),
    "place": re.compile(r"地址|位置|地点|门牌|楼号|几号楼|小区|单元|在哪"),
    "contact_time": re.compile(r"时间|几点|什么时候联系|联系时间"),
    "description": re.compile(r"问题|情况|描述|事情|内容|说的不是"),
}
_NEW_VALUE = re.compile(r"(?:应该是|其实是|改成|改为|换成|更正为|是|为|：|:)\s*(.+)$")


@dataclass(frozen=True)
class Correction:
    slot: str | None  # which slot the resident names, None when only the new value can tell
    value: str  # the words after 是 / 改成 …, or the whole message
    given: bool  # whether the message carries the new value (else the bot must ask for it)


def read_correction(text: str) -> Correction | None:
    """A correction in words ("电话写错了，是137…", "不对，是5号楼，不是3号楼", "地址说错了"), or None."""
    text = simplified(text.strip())
    if not _CORRECTION.search(text):
        return None
    slot = next((name for name, words in _SLOT_WORDS.items() if words.search(text)), None)
    tail, given = text, False
    for part in re.split(r"[，,。；;！!]", text):
        if re.match(r"\s*(不是|而不是|并不是)", part):
            continue  # "不是3号楼" names the wrong value, not the new one
        found = _NEW_VALUE.search(part)
        if found and not _CORRECTION.search(found.group(1)):
            tail, given = found.group(1).strip(), True
    if not given and re.search(r"\d{7,}", text):
        given = True  # "电话写错了 13700003333": the number is the value
    return Correction(slot, tail.strip(" ，,。"), given)


# -- the phone: declined or questioned ---------------------------------------
_NO_PHONE = re.compile(
    r"没(有)?(手机|电话)|不(想|方便|愿意|能)(留|给|说|透露)|不留|不给(你)?(电话|号码)|能不能不留|可以不留|可不可以不留|能不留|不用留|"
    r"匿名|不想(让人)?知道|保密"
)
_WHY_PHONE = re.compile(r"(为什么|为啥|干嘛|干什么|凭什么|有什么用|做什么).{0,6}(电话|手机|号码)|(电话|手机|号码).{0,6}(干嘛|干什么|做什么|有什么用|安全吗|会不会泄露|给谁|谁能看)")
_LANDLINE_ONLY = re.compile(r"(只有|就有|只能用)(座机|固话|固定电话|家里电话)")


_CONFIDENTIAL = re.compile(r"(不想|不要|别|不能|不愿意)让?[^，。,.]{1,6}知道|(怕|担心)[^，。,.]{0,8}(知道|报复|找我|找上门)|"
                           r"保密|匿名|不想暴露|别说是我|不要说是我")


def wants_confidentiality(text: str) -> bool:
    """"我不想让邻居知道是我反映的": the resident fears being known as the one who reported."""
    return bool(_CONFIDENTIAL.search(simplified(text)))


def declines_phone(text: str) -> bool:
    text = simplified(text)
    return bool(_NO_PHONE.search(text)) and not _LANDLINE_ONLY.search(text)


def asks_why_phone(text: str) -> bool:
    return bool(_WHY_PHONE.search(text))


def landline_only(text: str) -> bool:
    return bool(_LANDLINE_ONLY.search(text))


# -- places --------------------------------------------------------------------
_ADDRESS = re.compile(
    r"\d+\s*(号楼|号院|号|栋|幢|单元|门|层|楼|室|户)|[一二三四五六七八九十]+(号楼|栋|幢|单元|层|楼)|"
    r"(小区|社区|胡同|大厦|广场|公寓|花园|家园|新村|底商|楼下|楼上|楼道|门口|对面|旁边|附近|院里|院内|停车场|车库|菜市场|公园)|"
    r"[\u4e00-\u9fff]{2,}(路|街|里|巷|弄|苑)(\d|口|边|上|旁|北|南|东|西|$)"
)


def looks_like_place(text: str) -> bool:
    """Whether an answer to "where?" names a place: an address pattern, and not a question about something else."""
    text = text.strip()
    return bool(_ADDRESS.search(text)) and len(text) <= 60 and not looks_like_question(text)


# -- when to call ----------------------------------------------------------------
_TIME_WORDS = (r"随时|全天|整天|一天到晚|任何时间|什么时候都|都可以|都行|都方便|早上|早晨|上午|中午|午饭|下午|傍晚|晚上|晚饭|夜里|白天|"
               r"周末|周[一二三四五六日天]|星期[一二三四五六日天]|礼拜[一二三四五六日天]?|工作日|休息日|节假日|明天|后天|今天|"
               r"下班|上班|午休|[0-9一二三四五六七八九十两]{1,3}\s*[点:：时]\s*[0-9半一二三四五六七八九十]{0,3}\s*分?")
_TIME = re.compile(f"({_TIME_WORDS})(以后|之后|以前|之前|后|前|左右|到|至|-|—|~|～|都|也)?")
_CONTACT_CUE = re.compile(f"({_TIME_WORDS}).{{0,8}}(联系|打电话|来电|打给|打我|可以打|能打|找我|在家|有空|方便|有人)|"
                          f"(联系|打电话|来电|打给|找我).{{0,6}}({_TIME_WORDS})")
# what a clause may hold besides time words and still be only a time to call ("工作日晚上七点以后")
_TIME_FILLER = re.compile(r"以后|之后|以前|之前|后|前|左右|到|至|都|也|可以|能|行|我|的|在家|有空|方便|联系|打|电话|吧|啊|呢|[\s~～\-—]")


def contact_time(text: str, asked: bool) -> str:
    """When the resident can be called, in their own words ("下班以后", "周末都在家", "上午十点前"), or "".

    When the time was not asked for, it must come with a contact cue ("晚上联系我"),
    so that "半夜吵得睡不着" is not read as a time to call.
    """
    text = simplified(text.strip())
    found = _CONTACT_CUE.search(text)
    if found:
        return found.group(0)[:40]
    for clause in _CLAUSE.split(text):  # a clause that is nothing but a time: "…，工作日晚上七点以后"
        clause = clause.strip()
        if _TIME.search(clause) and len(_TIME_FILLER.sub("", _TIME.sub("", clause))) <= 1 and len(clause) >= 2:
            return clause[:40]
    if asked:
        time = _TIME.search(text)
        return "" if time is None else text[:40] if len(text) <= 20 else time.group(0)
    return ""


# -- two problems in one message ---------------------------------------------
_CLAUSE = re.compile(r"[，,。；;！!]|还有|另外|而且|同时|并且|再就是")


def clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE.split(text) if len(c.strip()) >= 3]


# "今天谁值班", "当班社工是谁", "社区几点有人": today's duty at the community, not a document question; a question
# about another day ("周六上午有人值班吗") is for the documents, which give the hall's hours
_ON_DUTY = re.compile(r"(谁|哪位|哪个|什么人).{0,6}(值班|当班|在班)|(值班|当班)的?(是谁|是哪位|社工|人员|的人|在吗|吗)|"
                      r"有人(值班|当班)|社区.{0,10}(几点|什么时候|啥时候|现在|今天).{0,6}有人|(今天|现在).{0,4}社区.{0,4}有人")
_NOT_COMMUNITY_DUTY = re.compile(r"物业|保安|门卫|医院|派出所|供热|燃气|电话是多少|电话多少")
_ANOTHER_DAY = re.compile(r"明天|后天|昨天|周末|节假日|假期|春节|国庆|(周|星期|礼拜)[一二三四五六日天1-7]")


def asks_who_is_on_duty(text: str) -> bool:
    """A question about who is on duty at the community (not the property office's night guard)."""
    return len(text) <= 40 and bool(_ON_DUTY.search(text)) and not _NOT_COMMUNITY_DUTY.search(text) \
        and not _ANOTHER_DAY.search(text)
