"""Turn a knowledge file into text with markdown-style headings, plus its title and date.

Every loader returns a :class:`LoadedDocument` or raises :class:`LoadError`
with a reason an admin can act on (in Chinese, since admins read it).
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bot.errors import LoadError

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx", ".jpg", ".jpeg", ".png")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # photos of a notice, read by OCR

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_DATE_IN_NAME = re.compile(r"[(（](\d{4}-\d{2}-\d{2})[)）]")
_ISO_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")


@dataclass(frozen=True)
class LoadedDocument:
    title: str
    date: str | None
    text: str  # body; headings as markdown '#' lines where the format has them
    effective: str | None = None  # front matter: not cited before this day (ISO date)
    expires: str | None = None  # front matter: not cited after this day
    ocr: bool = False  # the text was recognised from images (a scan or a photo): admins should check it
    audience: str = "public"  # front matter `audience: staff`: for workers only, never cited to a resident


def load_document(path: Path) -> LoadedDocument:
    """Read one file of a supported format; raise LoadError with the reason otherwise."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"不支持的文件类型 {suffix or '(无扩展名)'}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"无法读取文件: {exc.strerror}") from exc
    if size == 0:
        raise LoadError("文件为空")
    window: tuple[str | None, str | None] = (None, None)  # effective, expires: front matter only
    audience = "public"
    ocr = False
    if suffix == ".pdf":
        from bot.retrieval.pdf import read_pdf

        title, date, text, ocr = read_pdf(path)
    elif suffix == ".docx":
        title, date, text = _read_docx(path)
    elif suffix in IMAGE_SUFFIXES:
        from bot.retrieval.ocr import read_image

        title, date, text = None, None, read_image(path)
        ocr = True
    elif suffix in (".html", ".htm"):
        title, date, text = _read_html(decode_text(path.read_bytes()))
    else:
        raw = decode_text(path.read_bytes())
        title, date, text = _split_front_matter(raw)
        fields = _front_matter_fields(raw)
        window = (_iso(fields.get("effective")), _iso(fields.get("expires")))
        audience = audience_of(fields.get("audience"))
    text = _normalise(text)
    if not text.strip():
        raise LoadError("文件中没有可用的文字")
    if title and title.strip() == path.stem:
        title = None  # tools write the file name as the "title": no more a title than the name itself
    if not title and not _first_heading(text):
        title, text = _title_line(text)
    title = title or _first_heading(text) or path.stem
    date = date or _date_in_body(text) or _date_from_name(path.name)
    return LoadedDocument(title=title.strip(), date=date, text=text, effective=window[0], expires=window[1], ocr=ocr,
                          audience=audience)


PUBLIC_AUDIENCES = ("", "public", "all", "everyone", "residents", "公开", "居民", "全部")


def audience_of(value: str | None) -> str:
    """The front matter's audience: "public", or "staff" for any other value.

    Fails closed: `audience: staf` (a typo) or `audience: 网格员` keeps a document from residents rather
    than publishing an internal handbook.
    """
    return "public" if (value or "").strip().lower() in PUBLIC_AUDIENCES else "staff"


def decode_text(data: bytes) -> str:
    """Decode UTF-8, GBK or GB18030 text without mojibake; refuse binary data."""
    if b"\x00" in data[:4096]:
        raise LoadError("不是文本文件（含有二进制内容）")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is None:
            raise LoadError("无法识别文件编码（不是 UTF-8 / GBK / GB18030 文本）")
        text = str(best)
    if _looks_binary(text):
        raise LoadError("不是文本文件（含有大量控制字符）")
    return text


def _looks_binary(text: str) -> bool:
    sample = text[:20000]
    if not sample:
        return False
    bad = sum(
        1
        for ch in sample
        if (unicodedata.category(ch) in ("Cc", "Co", "Cs", "Cn") and ch not in "\n\r\t\f")
    )
    return bad / len(sample) > 0.01


def _split_front_matter(text: str) -> tuple[str | None, str | None, str]:
    match = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    if not match:
        return None, None, text
    fields = _front_matter_fields(text)
    return fields.get("title") or None, _iso(fields.get("date")), text.lstrip("\ufeff")[match.end():]


def _front_matter_fields(text: str) -> dict[str, str]:
    """`key: value` lines of the front matter ({} without one): title, date, effective, expires."""
    match = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    fields: dict[str, str] = {}
    for line in (match.group(1).splitlines() if match else []):
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip().strip("\"'")
    return fields


def _read_html(html: str) -> tuple[str | None, str | None, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "noscript"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else None
    date_meta = soup.find("meta", attrs={"name": re.compile("date", re.I)})
    date = _iso(date_meta.get("content")) if date_meta else None
    lines: list[str] = []
    loose: list[str] = []
    _html_blocks(soup.body or soup, lines, loose)
    _flush_loose(lines, loose)
    return title, date, "\n\n".join(lines)


_HTML_TEXT_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "td", "pre")
_HTML_CONTAINERS = ("div", "section", "article", "main", "header", "table", "tr", "th", "ul", "ol", "dl", "dt", "dd",
                    "blockquote", "form")


def _html_blocks(node, lines: list[str], loose: list[str]) -> None:
    """Append the text blocks under node to lines, in document order.

    Text outside p/li/td/pre (e.g. ``<div>第一段<br>第二段</div>``, common on government
    sites) is kept as its own lines rather than silently dropped.
    """
    from bs4 import NavigableString, Tag
    from bs4.element import PreformattedString

    for child in node.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, PreformattedString):  # comments, doctype, CDATA
                loose.append(str(child))
        elif not isinstance(child, Tag):
            continue
        elif child.name == "br":
            loose.append("\n")
        elif child.name in _HTML_TEXT_BLOCKS and not child.find(["p", "li", "td"]):
            _flush_loose(lines, loose)
            text = child.get_text(" ", strip=True)
            if text:
                lines.append(("#" * int(child.name[1]) + " " + text) if child.name[0] == "h" else text)
        elif child.name in _HTML_TEXT_BLOCKS or child.name in _HTML_CONTAINERS:
            _flush_loose(lines, loose)
            _html_blocks(child, lines, loose)
            _flush_loose(lines, loose)
        else:  # inline (span, b, a, font ...): its text joins the run around it
            _html_blocks(child, lines, loose)


def _flush_loose(lines: list[str], loose: list[str]) -> None:
    for part in "".join(loose).split("\n"):
        part = " ".join(part.split())
        if part:
            lines.append(part)
    loose.clear()


def _read_docx(path: Path) -> tuple[str | None, str | None, str]:
    try:
        import docx  # python-docx
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise LoadError("读取 .docx 需要 python-docx") from exc
    _refuse_zip_bomb(path)
    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError("Word 文件损坏或不是 .docx 格式") from exc
    except Exception as exc:  # python-docx raises assorted lxml/opc errors on junk
        raise LoadError(f"Word 文件无法解析: {type(exc).__name__}") from exc
    props = document.core_properties
    title = props.title or None
    date = props.created.date().isoformat() if props.created else None
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    lines: list[str] = []
    # paragraphs and tables in the order they stand: a table belongs under the heading before it
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, document)
            text = para.text.strip()
            if not text:
                continue
            style = (para.style.name or "").lower() if para.style is not None else ""
            level = _docx_heading_level(style)
            lines.append(("#" * level + " " + text) if level else text)
        elif tag == "tbl":
            for row in Table(child, document).rows:
                cells = [c.text.strip() for c in row.cells if c.text.strip()]
                if cells:
                    lines.append(" | ".join(cells))
    return title, date, "\n\n".join(lines)


MAX_UNPACKED_MB = 100  # a .docx is a zip: refuse one that would unpack into more than this


def _refuse_zip_bomb(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise LoadError("Word 文件损坏或不是 .docx 格式") from exc
    if unpacked > MAX_UNPACKED_MB * 2**20:
        raise LoadError(f"Word 文件解压后超过 {MAX_UNPACKED_MB} MB，可能是压缩炸弹，已拒绝")


def _docx_heading_level(style: str) -> int:
    if style == "title":
        return 1
    match = re.match(r"heading (\d)", style)
    return min(int(match.group(1)), 6) if match else 0


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u3000", " ")
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _first_heading(text: str) -> str | None:
    for line in text.splitlines()[:20]:
        if line.startswith("# "):
            return line[2:].strip()
    return None


# A first line is a title when it is short, is not a sentence or a clause leading into
# the next line, and text follows it: "关于2025年冬季取暖补贴的通知" is one,
# "各位居民：" and "今年取暖补贴按面积计算。" are not.
_TITLE_MAX = 60
_NOT_A_TITLE_END = tuple("。；;，,：:、")


def _title_line(text: str) -> tuple[str | None, str]:
    """(title, text with that line as a '# ' heading) when the first line reads as a title, else (None, text).

    Plain text, and Word or PDF files without a title in their metadata, are titled
    this way: a district's notice carries its title on its first line, and a title
    found by a resident's words is worth more than the file name ("notice-12.txt").
    """
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None, text
    line = lines[first].strip()
    rest = "\n".join(lines[first + 1:]).strip()
    if not rest or not 2 <= len(line) <= _TITLE_MAX or line.endswith(_NOT_A_TITLE_END):
        return None, text
    if _ISO_DATE.fullmatch(line) or not re.search(r"[^\W\d_]", line):
        return None, text  # a date or a number is no title
    return line, f"# {line}\n\n{rest}"


_CN_DATE = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
# "发布日期：2026-12-01", "印发时间：2025年3月1日", "日期: 2025/3/1" near the top of a notice
_LABELLED_DATE = re.compile(rf"(?:发布|印发|成文|公布|发文)?(?:日期|时间)\s*[:：]\s*{_CN_DATE}")
# the date a notice is signed with, alone on one of its last lines: "2025年3月1日"
_SIGNED_DATE = re.compile(rf"^[（(]?{_CN_DATE}[)）]?$")


def _date_in_body(text: str) -> str | None:
    """The date a document states: a labelled date in its first lines, else the signing date on its last ones.

    A date inside a sentence ("2020年2月4日，工信部……") is an event, not the document's date, and is not read.
    """
    lines = [line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()]
    for line in lines[:10]:
        match = _LABELLED_DATE.search(line)
        if match:
            return _valid_date(*match.groups())
    for line in reversed(lines[-5:]):
        match = _SIGNED_DATE.match(line)
        if match:
            return _valid_date(*match.groups())
    return None


def _valid_date(year: str, month: str, day: str) -> str | None:
    import datetime

    try:
        return datetime.date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


def _date_from_name(name: str) -> str | None:
    match = _DATE_IN_NAME.search(name)
    return match.group(1) if match else None


def _iso(value: str | None) -> str | None:
    if not value:
        return None
    match = _ISO_DATE.search(value)
    if not match:
        return None
    y, m, d = match.group(0).split("-")
    return f"{int(y):04d}-{int(m):02d}-{int(d):02d}"
