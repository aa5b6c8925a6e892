"""The bot's fixed Chinese texts, in one place so wording is reviewed together."""

WELCOME = (
    "您好，我是河西区“数字社工”。我可以：\n"
    "1. 解答政策和社区服务问题（会注明依据的文件）；\n"
    "2. 帮您反映需要处理的问题，比如暖气不热、楼道堆物、邻里噪音、老人助餐，生成工单派给网格员并跟进到底；\n"
    "3. 查看您反映问题的进度。\n"
    "直接用文字告诉我就行。"
)
HELP = (
    "常用命令：\n/report 反映问题\n/my 我的工单\n/cancel 取消当前操作\n/help 帮助\n"
    "也可以直接提问，例如“老人家食堂怎么报名”，或描述问题，例如“3号楼2单元暖气不热”。"
)
NOT_COVERED = (
    "抱歉，现有的政策文件里没有找到能回答这个问题的内容，我不想随便给您一个不准确的答复。"
    "需要的话，我可以把问题转给社区工作人员，由他们答复您。"
)
NOT_COVERED_BRIEF = "抱歉，现有的政策文件里没有找到这个问题的答案，我不想随便答复您。登记完这件事后，可以再把这个问题转给工作人员。"
UNSURE = "我想确认一下：您是想查询政策信息，还是反映一个需要工作人员处理的问题？"
UNSUPPORTED = "暂时只能处理文字、图片和位置。请用文字描述您的问题，需要的话可以再发照片。"
TOO_LONG = "您的消息比较长，我先按前面的内容处理；如果有多件事，可以分开发给我。"
EMPTY = "没有收到文字内容。请直接用文字告诉我您的问题。"
GREETING = "您好！请问有什么可以帮您？可以直接提问，或者描述需要处理的问题。"
THANKS = "不客气！还有其他需要随时找我。"
CANCELLED = "好的，已取消。"
REPORT_CANCELLED = "好的，这次的登记已取消，没有提交。以后需要时随时找我。"
WILL_ACT = "会的：登记提交后，会派给负责您这栋楼的网格员，按接诉即办的时限联系您、处理并跟进到底，您也可以随时发 /my 查进度。"
CONFIDENTIAL = ("请放心：您的姓名、电话和住址只有负责处理的网格员能看到，不会告诉被反映的一方，"
                "工作人员上门时也不会说是谁反映的。")
ABOUT = ("我是河西区的“数字社工”智能助手，不是真人。政策问题我按区里的文件回答并注明出处；"
         "需要处理的问题我帮您登记，派给负责的网格员（真人）跟进。")
NOTHING_TO_CANCEL = "当前没有进行中的操作。"
NO_TICKETS = "您还没有反映过问题。需要时发送 /report 或直接描述问题即可。"
ERROR = "抱歉，系统刚才出了点问题，请稍后再发一次。如果是急事，请直接拨打社区电话。"
KEPT_FOR_LATER = "抱歉，系统暂时有点忙，您的消息已经记下了，恢复后会马上处理并回复您，不用重发。如果是急事，请直接拨打社区电话。"
PRIVATE_ONLY = "为了保护您的个人信息，请私聊我反映问题或咨询政策。"
UNAVAILABLE = "抱歉，政策查询暂时无法使用，请稍后再试；如有急事可以直接反映问题，我会生成工单。"
PHOTO_WITHOUT_REPORT = "收到照片。请问这是要反映什么问题？用文字简单描述一下，我帮您提交给网格员。"
LOCATION_WITHOUT_REPORT = "收到位置。请问这里出了什么问题？用文字简单描述一下，我帮您提交给网格员。"
RATE_PROMPT = "您的问题已处理完成，请为这次服务打分（1-5分，5分最满意）。如果问题没有解决，请点“没解决”。"
STAFF_ONLY = "这个命令只对工作人员开放。"


def emergency(numbers: dict[str, str]) -> str:
    lines = ["⚠️ 如果情况紧急，请先立即拨打："]
    lines += [f"{name} {number}" for name, number in numbers.items()]
    lines.append("燃气泄漏时不要开关电器、不要点火，开窗通风并尽快离开。我同时为您生成紧急工单，通知网格员。")
    return "\n".join(lines)


INTERNAL_SOURCE = "（内部资料，仅供工作人员参考，请勿转发居民）"


def duty(days: list, many: bool) -> str:
    """今日我当班 for a resident: hours, place, the hall's number and today's duty staff (names only)."""
    if many:
        return "请告诉我您住的小区或社区，我帮您查当天的值班社工，例如“景村里今天谁值班”。"
    if len(days) > 1 and not any(d.on_duty for d in days):
        # nobody is rostered anywhere today: one line a community, not a block each
        lines = ["今天各社区没有排班记录，服务时间内到社区服务大厅找工作人员即可："]
        lines += [f"· {d.community}：{d.hours or '服务时间请电话询问'}" + (f"，电话 {d.phone}" if d.phone else "")
                  for d in days]
        lines.append("告诉我您住的小区，可以只看您的社区，例如“景村里今天谁值班”。")
        return "\n".join(lines)
    blocks = []
    for d in days:
        lines = [f"{d.community}今日当班：{'、'.join(d.on_duty)}" if d.on_duty else
                 f"{d.community}今天没有排班记录，服务时间内到社区服务大厅找工作人员即可。"]
        if d.hours:
            lines.append(f"服务时间：{d.hours}")
        if d.office:
            lines.append(f"地点：{d.office}")
        if d.phone:
            lines.append(f"社区电话：{d.phone}")
        blocks.append("\n".join(lines))
    blocks.append("当班社工对所有事项一人受理；要反映问题，也可以直接在这里告诉我。")
    return "\n\n".join(blocks)

BUSY = "现在咨询的人比较多，您的消息还没有处理，请几秒后再发一次。"
