"""智能采集: a worker's free-text visit note read into a register entry.

"今天走访景村里3号楼2单元501，王大爷82岁独居，腿脚不便，想申请送餐，家里楼道灯坏了"
→ the place (building and grid, by the same resolver the chat intake uses), the
people with their age and tags (独居, 高龄, 残疾, 低保 …), what they need (送餐上门)
and the problems a worker files as tickets (楼道灯坏了 → 供电). The worker checks
and corrects the reading before it is saved; `bench/visits.py` measures it
field by field on notes written the way workers write them (shorthand, dictation,
typos, several people, no address).

Everything here is rules over the note's own words: a note names its people by a
surname and a form of address (王大爷, 李阿姨), a full name, or a relation (老伴,
孙子), and each tag, need and problem by a handful of words, so rules read them
precisely and can be explained to the worker who corrects them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from bot.core.ports import Categorizer, Places

_SURNAMES = ("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
             "阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段钱汤尹黎易常武乔贺赖龚文"
             "庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍韦申尤毕聂焦向柳邢岳齐梅莫庄辛管祝左涂谷祁时舒耿牟卜路詹关"
             "苗凌费纪靳盛童欧甄项曲成游阳裴席卫查屈鲍位覃霍翁隋植甘景薄包司柏宁柯阮桂闵解强柴车冉房边付鄢蔺郦储")
_COMPOUND_SURNAMES = "欧阳|司马|诸葛|上官|慕容|东方|司徒|皇甫|夏侯|公孙"
# (单 and 华 are surnames too, but 单元 and 华江里 are in every address)
_ADDRESS = ("老爷子|老太太|老太|大爷|大妈|大娘|阿姨|奶奶|爷爷|姥姥|姥爷|外婆|外公|阿婆|婆婆|大伯|伯伯|大叔|叔叔|婶婶|婶|"
            "大姐|大哥|师傅|先生|女士|老师|同学|小朋友|小妹|小弟|老汉|姐|哥|爷|奶")
# who a note speaks of without a name: a relation, or the household's role
_RELATIONS = ("太奶奶|太爷爷|重孙女|重孙子|外孙女|外孙|孙女|孙子|孙媳|老伴儿|老伴|老爷子|儿子|女儿|儿媳|媳妇|女婿|老公|老婆|丈夫|妻子|爱人|"
              "父亲|母亲|爸爸|妈妈|姑姑|舅舅|姨妈|哥哥|姐姐|弟弟|妹妹|孩子|小孩|户主|老太太|大爷|大娘|大妈|奶奶|爷爷|外婆|"
              "外公|姥姥|姥爷|大姐|婆婆|公公")
_CN_AGE = r"[一二三四五六七八九]?十有?[一二三四五六七八九]?|一百(?:零[一二三四五六七八九])?"
# a name followed by an age: "赵桂芳，78岁", "邓磊 35岁", "小杨 19"; a bare number must stand apart ("单元302" is none)
_AGE_AFTER = (rf"[，,、\s]*(?:今年)?(?:\d{{1,3}}|{_CN_AGE})(?:周)?(?:岁|了)|"
              rf"[，,、\s]+(?:今年)?(?:\d{{1,3}}|{_CN_AGE})(?=[\s，,]|$)")
_FULL_NAME = rf"(?:{_COMPOUND_SURNAMES}|[{_SURNAMES}])[\u4e00-\u9fa5]{{1,2}}"
# what may stand between a full name and its age: "赵桂兰，女，81岁", "郑志强（62岁）", "钟永福84"
_AGE_NEAR = (rf"[，,、（(\s]*(?:[男女][，,、\s]*)?(?:今年)?(?:\d{{1,3}}|{_CN_AGE})(?:周)?(?:岁|了)|"
             rf"[，,、\s]*(?:今年)?(?:\d{{2,3}}|{_CN_AGE})(?![\d\-号楼单元室层])")
# who introduces a person by full name: "户主赵桂兰", "居民陈国栋", "走访对象林秀珍", "特困人员邱学文", "走访周淑芬家"
_INTRODUCED = r"(?<=户主|居民|对象|人员|走访|老人|儿子|女儿)"
_NAME = re.compile(rf"[{_SURNAMES}](?:{_ADDRESS})|"  # 王大爷, 李姐, 吕爷
                   rf"小[\u4e00-\u9fa5](?={_AGE_AFTER})|"  # 小杨 19岁
                   rf"{_INTRODUCED}{_FULL_NAME}(?=[，,、（(\s]|家|$)|"
                   rf"{_FULL_NAME}(?=家(?:[，,。；\s]|$)|{_AGE_NEAR})|"  # 张建国家。 赵桂芳，78岁
                   rf"老[{_SURNAMES}]|{_RELATIONS}|独居老人|老人")
# "老伴前年走了", "女儿在外地", "和社工小刘一起": someone named who is not in the household to register
_GONE_AFTER = re.compile(r"^.{0,4}(?:去世|走了|过世|病故|不在|在外|外地|国外|在深圳|在别的|打工|改嫁|服刑|联系不上|上班)")
_NOT_HOUSEHOLD_BEFORE = re.compile(r"(?:社工|同事|网格员|志愿者|物业)$")
_CHILDREN = ("孙子", "孙女", "外孙", "外孙女", "重孙女", "重孙子", "孩子", "小孩", "哥哥", "妹妹", "弟弟", "姐姐", "儿子", "女儿")
_AGE = re.compile(rf"(?:今年)?(\d{{1,3}}|{_CN_AGE})\s*(?:周)?(?:岁|了)|"
                  rf"(?<![\d\-号室楼单元门层零一二三四五六七八九])(?:今年)?(\d{{2,3}}|{_CN_AGE})(?=\s|，|,|$)")
_NUMERAL = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

# tag -> the words that say it; typos workers make (独具, 低宝) are words too
TAG_WORDS = {
    "独居": r"独居|独具|独局|独自居住|独自生活|一个人住|一人居住|自己一个人住|一个人生活|自己住|孤寡|无人同住",
    "高龄": r"高龄|[八九]十多|快九十|年过八旬|耄耋",
    "残疾": r"残疾(?!人?补[贴帖])|残积|残废|残障|瘫痪|偏瘫|截肢|失明|盲人|聋|哑巴|肢体障碍|智力障碍|精神障碍|自闭症|坐轮椅|轮椅",
    "低保": r"(?<!申请)(?<!想办)(?<!办)(?:低保|低宝|抵保)(?!申请|材料|进度|政策|怎么)|最低生活保障",
    "特困": r"特困|五保",
    "困境儿童": r"困境儿童|孤儿|事实无人抚养|父母双亡|无人抚养",
    "留守儿童": r"留守|(?:父母|爸妈)(?:都)?在外(?:地)?(?:打工)?|(?:父母|爸妈)外出打工|(?:父母|爸妈)(?:都)?在[\u4e00-\u9fa5]{2}打工",
    "失能": r"失能|卧床|不能自理|瘫在床",
}
_TAGS = {tag: re.compile(words) for tag, words in TAG_WORDS.items()}
ELDERLY_AGE = 80  # 高龄 as the district's allowances count it

# need -> the words that ask for it
NEED_WORDS = {
    "送餐上门": r"送餐|送.{0,2}饭|助餐|吃饭(?:难|成问题|不方便)|做不了饭|做饭(?:困难|不便|费劲)|老人家食堂|配餐",
    "无障碍改造": r"无障碍|扶手|门槛|坡道|防滑|适老化|轮椅(?:进出|上下)|改造",
    "助浴": r"助浴|洗澡|洗个澡",
    "家庭医生": r"家庭医生|签约医生|上门(?:看病|诊疗|医疗)|量血压|测血糖|开药|配药",
    "居家照护": r"照护|陪护|护理|照料|护工|照顾|照看|没人管|喘息服务",
    "就业帮扶": r"就业|找.{0,6}(?:工作|活|事干|事做|营生)|(?:有没有|需要|想要).{0,6}工作|失业|下岗|技能培训|干的活",
    "低保申请": r"申请低保|办低保|低保申请|想(?:申请|办)低保|生活困难.{0,6}补助",
    "残疾人补贴": r"残疾人补[贴帖]|残疾补[贴帖]|两项补贴|护理补贴|办残疾证|残疾证(?:办理|申请)",
    "租房补贴": r"租房补贴|房租补贴|租金补贴|公租房|廉租房",
    "取暖补贴": r"取暖补贴|供暖补贴|取暖费|暖气费",
    "心理关爱": r"孤独|心情不好|情绪低落|没人说话|想不开|抑郁|心理|没精神|开导|憋屈|聊聊天|陪.{0,3}聊|说说话",
    "儿童关爱": r"辅导作业|课后托管|托管|学习辅导|学费|助学|儿童之家|四点半课堂|关爱对象|带带孩子|孩子.{0,6}活动",
}
_NEEDS = {need: re.compile(f"{need}|{words}") for need, words in NEED_WORDS.items()}  # the service's own name too

# what makes a clause a problem to file: something broken, blocked, leaking, piled up, loud or stopped
_PROBLEM = re.compile(r"坏|不亮|不好使|不能用|漏|渗水|滴水|冒|返水|返味|堵|不通|不热|不太热|冰凉|冰冷|不暖|"
                      r"堆|杂物|噪音|吵|扰民|电钻|跺|裂|脱落|掉(?:皮|渣)|停水|停电|没水|没电|水压|跳闸|漏电|"
                      r"打不着|煤气味|异味|臭|垃圾|积水|困人|停了|停运|故障|异响|锈|松动|破损|塌|拉线充电|飞线|"
                      r"没人接|不在岗|不干活|不作为|不管|推来推去|半天才|爆|气味")
# the problem's ticket category, by the thing named; the categoriser decides what these words do not
PROBLEM_HINTS = [
    ("噪音扰民", r"噪音|吵|扰民|电钻|跺|装修.{0,6}(?:响|声)"),
    ("电梯", r"电梯"),
    ("燃气", r"燃气|煤气|天然气|打不着火"),
    ("供暖", r"暖气|暖器|供暖|屋里.{0,4}冷|不热|不太热"),
    ("排水", r"下水|地漏|返水|返味|马桶|化粪|污水|管道.{0,2}堵"),
    ("供水", r"水压|停水|没水|自来水|水管|热水器|水龙头"),
    ("路灯", r"路灯"),
    ("供电", r"灯|跳闸|插座|停电|没电|电线|漏电"),
    ("楼道堆物", r"堆|杂物|电动车|纸箱|花盆|自行车|拉线充电|飞线|通道"),
    ("物业管理", r"物业|保安|报修电话"),
    ("环境卫生", r"垃圾|卫生|异味|臭"),
]
_HINTS = [(category, re.compile(words)) for category, words in PROBLEM_HINTS]
# a clause about the person, not the building: "腿脚不好", "耳朵背", "眼睛看不清"
_ABOUT_THE_PERSON = re.compile(r"腿|脚|耳朵|眼睛|身体|心情|记性|摔|病|血压|糖尿病|中风|脑梗|腰")
_NOT_TO_FILE = ("养老服务", "助残服务", "住房保障", "就业服务", "邻里纠纷", "其他")


@dataclass
class PersonReading:
    name: str  # as the note names them: 王大爷, 老伴, 孙子; "老人" when unnamed
    age: int | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class VisitReading:
    note: str
    place: str = ""
    building_id: str | None = None
    grid_id: str | None = None
    community: str = ""
    people: list[PersonReading] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (the clause, its ticket category)


def read_visit(note: str, places: Places, categorizer: Categorizer) -> VisitReading:
    note = " ".join(note.split())[:2000]
    reading = VisitReading(note)
    match = places.resolve(note)
    if match is not None:
        reading.place, reading.building_id, reading.grid_id, reading.community = (
            match.text, match.building_id, match.grid_id, match.community)
    heard = sounds_right(note)
    reading.people = _people(heard)
    reading.needs = [need for need, words in _NEEDS.items() if words.search(heard)]
    reading.problems = _problems(heard, categorizer)
    return reading


# Voice input and quick typing write the right sound with the wrong characters (独据, 底保, 残急, 特捆, 留手):
# a span that sounds like one of these words is read as it. Only words whose sound nothing else in a visit note
# makes (老伴 is not here: 老板 sounds the same).
SOUND_ALIKE = ("独居", "低保", "残疾", "特困", "留守", "高龄", "失能", "卧床", "困境", "送餐", "助餐", "助浴", "扶手",
               "无障碍", "照护", "补贴", "取暖", "暖气", "漏水", "下水", "电梯", "燃气")


def sounds_right(note: str) -> str:
    """The note with each span that sounds like a word of SOUND_ALIKE written as that word (same length)."""
    syllables = [_syllable(ch) for ch in note]
    out = list(note)
    for word, sound in _sounds().items():
        n = len(word)
        for i in range(len(note) - n + 1):
            if syllables[i:i + n] == sound and note[i:i + n] != word:
                out[i:i + n] = word
    return "".join(out)


@functools.lru_cache(maxsize=8192)
def _syllable(ch: str) -> str | None:
    if not "\u4e00" <= ch <= "\u9fff":
        return None
    from pypinyin import lazy_pinyin

    return lazy_pinyin(ch)[0]


@functools.cache
def _sounds() -> dict[str, list]:
    """The words' syllables, on first use: loading pypinyin's dictionary is not an import's business."""
    return {word: [_syllable(ch) for ch in word] for word in SOUND_ALIKE}


def _clauses(note: str) -> list[str]:
    # punctuation, spaces (dictation and shorthand separate with them) and list markers (1. 2、) end a clause
    return [c.strip() for c in re.split(r"[，,。；;！!？?\s]|(?<!\d)\d[.、．](?!\d)", note) if c and c.strip()]


@dataclass
class _Mention:
    start: int
    person: PersonReading


def _people(note: str) -> list[PersonReading]:
    """People in order of mention. An age or a tag goes to the person named last before it (so in "王大爷 82岁
    独居 老伴81岁" each gets their own), a child's tag to the children, "都是低保" to everyone named so far."""
    people: dict[str, PersonReading] = {}
    mentions: list[_Mention] = []
    for m in _NAME.finditer(note):
        name = "老人" if m.group(0) == "独居老人" else m.group(0)
        if _GONE_AFTER.match(note[m.end():]) or _NOT_HOUSEHOLD_BEFORE.search(note[:m.start()]):
            continue
        if name == "老人" and people:
            continue  # "老人" after a name is that person again
        if name in ("老人", "户主") and _NAME.match(note, m.end() + (1 if note[m.end():m.end() + 1] in " ，," else 0)):
            continue  # "户主赵桂兰", "高龄老人 段奶奶": the name that follows is the person
        if name in ("孩子", "小孩") and any(p.name in _CHILDREN or p.name.startswith("小") for p in people.values()):
            continue  # "孩子" after "孙子11岁" is that child again
        mentions.append(_Mention(m.start(), people.setdefault(name, PersonReading(name))))
    for m in _AGE.finditer(note):
        holder = _holder(mentions, m.start())
        value = _number(m.group(1) or m.group(2))
        if holder is not None and holder.age is None and value is not None and 0 < value <= 120:
            holder.age = value
    for tag, words in _TAGS.items():
        for m in words.finditer(note):
            for holder in _tag_holders(tag, mentions, m.start(), note, people):
                if tag not in holder.tags:
                    holder.tags.append(tag)
    for person in people.values():
        if person.age is not None and person.age >= ELDERLY_AGE and "高龄" not in person.tags:
            person.tags.append("高龄")
    # the register keeps those the worker must come back to: people with an age or a tag
    return [p for p in people.values() if p.tags or p.age is not None]


def _holder(mentions: list[_Mention], at: int) -> PersonReading | None:
    before = [m for m in mentions if m.start <= at]
    if before:
        return before[-1].person
    after = [m for m in mentions if m.start > at]
    return after[0].person if after else None  # "82岁的王大爷": the age before the name


def _tag_holders(tag: str, mentions: list[_Mention], at: int, note: str,
                 people: dict[str, PersonReading]) -> list[PersonReading]:
    if tag in ("困境儿童", "留守儿童"):
        children = [p for p in people.values() if p.name in _CHILDREN or p.name.startswith("小")
                    or (p.age is not None and p.age < 18)]
        if children:
            return children
    if re.search(r"都(?:是|有|属于|为)?$|俩都$|两人都$", note[max(0, at - 4):at]):
        everyone = [m.person for m in mentions if m.start <= at]
        if everyone:
            return [p for i, p in enumerate(everyone) if all(p is not q for q in everyone[:i])]
    holder = _holder(mentions, at)
    if holder is None:
        holder = people.setdefault("老人", PersonReading("老人"))
        mentions.insert(0, _Mention(-1, holder))
    return [holder]


def _number(text: str | None) -> int | None:
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if text.startswith("一百"):
        return 100 + (_NUMERAL.get(text[-1], 0) if text.endswith(tuple("一二三四五六七八九")) else 0)
    text = text.replace("有", "")  # 八十有三
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_NUMERAL.get(tens, 1) if tens else 1) * 10 + (_NUMERAL.get(ones, 0) if ones else 0)
    return None


def _problems(note: str, categorizer: Categorizer) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for clause in _clauses(note):
        if not _PROBLEM.search(clause) or (_ABOUT_THE_PERSON.search(clause) and not _hint(clause)):
            continue
        category = _hint(clause) or categorizer.classify(clause).name
        if category in _NOT_TO_FILE:
            continue  # a person's situation or a need, not something to repair
        if all(category != c for _, c in found):
            found.append((clause, category))
    return found


def _hint(clause: str) -> str | None:
    return next((category for category, words in _HINTS if words.search(clause)), None)

