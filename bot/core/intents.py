"""What a message is for: question, request, emergency, dispute, follow-up, greeting, thanks, command.

Sharp cases are rules (an emergency must never wait on a model's mood); the
hard line between a *question* (an answer satisfies the resident) and a
*request* (someone has to act) is drawn by a QuestionRequestModel. When the
model is unsure the core asks with two buttons instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from bot.core.chinese import simplified

QUESTION = "question"
REQUEST = "request"
EMERGENCY = "emergency"
DISPUTE = "dispute"
FOLLOWUP = "followup"
GREETING = "greeting"
THANKS = "thanks"
COMMAND = "command"
UNSURE = "unsure"
ABOUT = "about"  # a question about the bot itself ("你是机器人吗")

_EMERGENCY = re.compile(
    r"(煤气|燃气|天然气|液化气).{0,6}(味|泄漏|漏气|泄露|漏了)|闻到.{0,4}(煤气|燃气|天然气)|"
    r"着火|起火|失火|火灾|冒(黑)?烟.{0,4}(了|啦)|冒(火|明火|火星)|火苗|明火|浓烟|烧起来|爆炸|"
    r"(晕倒|昏倒|昏迷|昏过去|晕过去|不省人事|叫不醒|没(有)?(了)?呼吸|没气了|心脏病(犯|发)|中风了|摔倒.{0,6}(起不来|不动)|抽搐|大出血|"
    r"胸口(疼|痛|闷得)|胸痛|心口疼|喘不(上|过)气|呼吸困难|憋得(喘|上不来)|口吐白沫|吐血|中毒|割腕|吞了药)|"
    r"(困|关)在电梯|电梯.{0,4}(困人|被困)|触电|"
    r"(水|屋里|家里|楼道|地下室).{0,4}(淹了|漫了|灌进来)|(跑水|爆管|水管爆).{0,10}(全是水|淹|止不住)|"
    r"有人(跳楼|轻生|要自杀)|(持刀|打人|砍人)"
)
_DISPUTE = re.compile(
    r"(邻居|楼上|楼下|隔壁|对门|邻里).{0,30}(吵|噪音|噪声|扰民|纠纷|矛盾|打架|骂|漏水|渗水|占用|占了|堆|养狗|狗叫|装修|不讲理|协商|调解)|"
    r"(调解|矛盾调处|纠纷)"
)
_FOLLOWUP = re.compile(
    r"((?<!是)我(之前|上次|前天|昨天|刚才|前几天|上周)?(报|反映|提交|投诉|说|申请|登记|预约|办)的|我的(工单|报修|诉求|申请))|"
    r"(工单|报修|诉求|申请).{0,6}(进度|怎么样|到哪|处理了|有人管)|(修了吗|修好了没|处理了吗|有人来吗|怎么还没(人)?(来|修|处理))|"
    r"(刚才|之前|上次).{0,12}(有人管了?吗|有人(处理|联系|来)了?吗|怎么样了|有进展吗|办好了吗)"
)
_GREETING = re.compile(r"^((你好|您好|在吗|在不在|hi|hello|嗨|哈喽|早上好|下午好|晚上好|喂)[呀啊吗！!。.,，~～\s]*)+$", re.I)
_ABOUT = re.compile(r"^(请问)?(你|您)(是|到底是)(谁|啥|什么|哪位|机器人|真人|人工|ai|AI|智能|客服|人还是)|"
                    r"(你|您)是(不是)?(真人|机器人|人工|ai|AI)|(你|您)叫(什么|啥)|^(是)?(真人|机器人|人工)(吗|还是)")
_THANKS = re.compile(r"^(谢谢|多谢|感谢|辛苦了|好的谢谢|好的|好|ok|OK|收到|明白了|知道了)[你您啦了呀啊！!。.~～\s]*$")
_THANKS_START = re.compile(r"^(谢谢|多谢|感谢|辛苦(你|您)?(们)?了)")
_QUESTIONISH = re.compile(r"[？?]|吗|怎么|什么|哪|多少|几|能不能|可不可以|有没有|请问|想问|坏|不热|漏|堵|吵")
_TICKET_NO = re.compile(r"\bT\d{6,}\b|工单号|编号")


@dataclass(frozen=True)
class IntentResult:
    intent: str
    confidence: float
    p_request: float | None = None


class QuestionRequestModel(Protocol):
    def p_request(self, text: str) -> float:
        """Probability that the message asks someone to act rather than for information."""
        ...


class IntentClassifier:
    def __init__(self, model: QuestionRequestModel, unsure_band: tuple[float, float] = (0.4, 0.6)):
        self.model = model
        self.unsure_band = unsure_band

    def classify(self, text: str) -> IntentResult:
        stripped = simplified(text.strip())  # the rules and the model read simplified characters
        if stripped.startswith("/"):
            return IntentResult(COMMAND, 1.0)
        if _EMERGENCY.search(stripped):
            return IntentResult(EMERGENCY, 0.95)
        if _GREETING.match(stripped):
            return IntentResult(GREETING, 0.95)
        if _ABOUT.search(stripped) and len(stripped) <= 20:
            return IntentResult(ABOUT, 0.9)
        if _THANKS.match(stripped) or (_THANKS_START.match(stripped) and len(stripped) <= 20
                                       and not _QUESTIONISH.search(stripped)):
            return IntentResult(THANKS, 0.95)
        if _FOLLOWUP.search(stripped) or (_TICKET_NO.search(stripped) and len(stripped) < 40):
            return IntentResult(FOLLOWUP, 0.9)
        p = self.model.p_request(stripped)
        if _DISPUTE.search(stripped) and p >= 0.35:
            return IntentResult(DISPUTE, 0.8, p)
        lo, hi = self.unsure_band
        if lo < p < hi:
            return IntentResult(UNSURE, 1 - abs(p - 0.5) * 2, p)
        return IntentResult(REQUEST if p >= hi else QUESTION, abs(p - 0.5) * 2, p)
