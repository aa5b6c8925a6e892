"""A keyword model of question vs request: transparent, instant, and the fallback of the learned one."""

from __future__ import annotations

import math
import re

# (pattern, weight): positive pushes towards "request" (someone must act), negative towards "question".
_CUES: list[tuple[re.Pattern[str], float]] = [
    (re.compile(p), w)
    for p, w in [
        (r"请求|恳请|恳求|要求|强烈|呼吁|希望(政府|有关部门|相关部门|领导|尽快|能|可以)|请(政府|有关部门|相关部门|领导).{0,6}(管|查|处理|解决|协调|督促)", 2.0),
        (r"尽快|赶紧|马上|立即|早日|及时", 1.2),
        (r"解决|处理一下|管一管|管管|整治|整改|查处|取缔|制止|拆除|清理|清运|维修|修理|修一下|修好|抢修|疏通|更换", 1.6),
        (r"投诉|举报|反映|曝光|控告|维权", 1.5),
        (r"坏了|不热|不通|堵了|堵塞|漏水|渗水|停水|停电|断电|没(有)?水|没(有)?电|没暖气|噪音|噪声|扰民|异味|臭|脏乱|乱扔|堆放|堆满|占道|占用|违建|违章|乱收费|拖欠|欠薪|不发工资|克扣", 1.5),
        (r"为什么(不|没|还|一直|迟迟|至今)|凭什么|到底|至今|迟迟|一直没|多次|几次|没人管|无人管|不作为|推诿|敷衍", 1.3),
        (r"建议|提议|应该(取消|出台|加强|整治|增加)|希望出台|能否出台", 1.0),
        (r"帮忙|帮我|帮帮|麻烦你们|求助|求求", 1.0),
        (r"请问|咨询一下|想问|想了解|想知道|问一下|请教", -1.2),
        (r"如何|怎么办理|怎样办理|怎么申请|如何申请|办理流程|流程是|需要(什么|哪些)(材料|条件|手续|证件)|材料|条件|标准是|多少钱|收费标准|在哪里|在哪|几点|什么时候|哪些|是否(可以|能|需要|符合|享受)|能否享受|能不能享受|可以享受|有没有(政策|补贴)", -1.4),
        (r"有哪些(措施|要求|政策|规定)|提出了(哪些|什么)|采取了?(哪些|什么)|做出了?(哪些|什么)|主要(内容|措施)|是指什么|是什么", -1.8),
        (r"[？?]$", -0.6),
    ]
]


class KeywordModel:
    """Logistic squash of summed cue weights; a bias towards questions for short plain queries."""

    def __init__(self, bias: float = -0.2):
        self.bias = bias

    def p_request(self, text: str) -> float:
        score = self.bias
        for pattern, weight in _CUES:
            if pattern.search(text):
                score += weight
        return 1.0 / (1.0 + math.exp(-score))
