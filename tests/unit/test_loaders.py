"""Loaders turn each supported format into text with markdown headings, or say clearly why not."""

from __future__ import annotations

import datetime
import io
import os
from pathlib import Path

import pytest

from bot.errors import LoadError
from bot.retrieval.loaders import decode_text, load_document


def make_text_pdf(lines: list[str], title: str | None = None, created: str | None = None) -> bytes:
    """A one-page PDF whose text layer holds the ASCII lines (Helvetica), built byte by byte."""
    content = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
        b" /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content.encode("ascii") + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if title or created:
        info = ""
        if title:
            info += f" /Title ({title})"
        if created:
            info += f" /CreationDate ({created})"
        objects.append(f"<<{info} >>".encode("ascii"))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if title or created:
        trailer += b" /Info %d 0 R" % len(objects)
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


HEATING_PDF_LINES = [
    "Winter Heating Subsidy for Residents with Disabilities",
    "Holders of a disability certificate receive 600 yuan per household each winter.",
    "Apply at the community service station before 15 October.",
]


def test_markdown_front_matter_gives_title_and_iso_date_and_is_not_body_text(tmp_path, write_doc):
    path = write_doc(tmp_path, "meal.md", "---\ntitle: 老人家食堂助餐服务指南\ndate: 2025-3-1\n---\n\n"
                     "# 老人家食堂助餐服务指南\n\n## 一、谁能来吃\n\n年满60周岁的老人都能来吃，不限户籍。\n")

    doc = load_document(path)

    assert doc.title == "老人家食堂助餐服务指南"
    assert doc.date == "2025-03-01"
    assert "title:" not in doc.text and "---" not in doc.text
    assert doc.text.startswith("# 老人家食堂助餐服务指南")
    assert "## 一、谁能来吃" in doc.text


def test_markdown_without_front_matter_takes_title_from_first_heading_and_date_from_file_name(tmp_path, write_doc):
    path = write_doc(tmp_path, "停水通知（2025-07-08）.md",
                     "# 华江里小区临时停水通知\n\n因管道抢修，7月9号上午8点到下午4点停水，请大家提前储水。\n")

    doc = load_document(path)

    assert doc.title == "华江里小区临时停水通知"
    assert doc.date == "2025-07-08"


def test_html_gives_title_meta_date_and_h1_h2_as_headings_without_scripts(tmp_path, write_doc):
    html = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<title>景村社区“今日我当班”服务介绍</title><meta name="date" content="2025-06-18">
<script>var tracker = "统计代码";</script></head><body>
<nav>首页 | 通知公告</nav>
<h1>景村社区“今日我当班”服务介绍</h1>
<p>每天安排一名社工在大厅值班，居民来办事不用再找对口的人。</p>
<h2>一、服务时间</h2>
<p>工作日 8:30—17:30；周六、周日 9:00—16:00 也有社工当班。</p>
<footer>版权所有</footer></body></html>"""
    path = write_doc(tmp_path, "duty.html", html)

    doc = load_document(path)

    assert doc.title == "景村社区“今日我当班”服务介绍"
    assert doc.date == "2025-06-18"
    assert "# 景村社区“今日我当班”服务介绍" in doc.text.splitlines()
    assert "## 一、服务时间" in doc.text.splitlines()
    assert "周六、周日 9:00—16:00 也有社工当班" in doc.text
    assert "统计代码" not in doc.text and "首页" not in doc.text and "版权所有" not in doc.text


def test_html_text_in_bare_divs_and_line_breaks_is_kept_in_order(tmp_path, write_doc):
    html = """<html><head><title>关于做好2025年冬季供暖工作的通知</title></head><body>
<div class="article"><h1>关于做好2025年冬季供暖工作的通知</h1>
<div id="zoom">各社区居委会：<br>今年供暖期为11月15日至<b>次年3月15日</b>。<br>居民室温低于18℃可拨打热线反映。
<p>附件：供热单位联系电话</p><div><span>联系人：王老师</span></div></div></div>
<!-- 编辑备注：别删 --></body></html>"""
    path = write_doc(tmp_path, "heating-notice.html", html)

    lines = load_document(path).text.splitlines()

    assert [line for line in lines if line] == [
        "# 关于做好2025年冬季供暖工作的通知",
        "各社区居委会：",
        "今年供暖期为11月15日至次年3月15日。",
        "居民室温低于18℃可拨打热线反映。",
        "附件：供热单位联系电话",
        "联系人：王老师",
    ]


def test_docx_heading_styles_become_markdown_headings_and_tables_become_rows(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("残疾人冬季取暖补贴办理指南", level=0)
    document.add_heading("一、补贴对象", level=1)
    document.add_paragraph("持有残疾人证、户籍在本区的重度残疾人，每户每年补贴600元。")
    document.add_heading("（一）怎么申请", level=2)
    document.add_paragraph("本人或者家属带身份证、残疾证到社区服务站登记，10月15号前交齐材料。")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "残疾等级", "补贴金额"
    table.cell(1, 0).text, table.cell(1, 1).text = "一级", "800元"
    document.core_properties.created = datetime.datetime(2025, 9, 1, 9, 30)
    path = tmp_path / "heating-subsidy.docx"
    document.save(str(path))

    doc = load_document(path)

    lines = doc.text.splitlines()
    assert doc.title == "残疾人冬季取暖补贴办理指南"
    assert doc.date == "2025-09-01"
    assert "# 一、补贴对象" in lines
    assert "## （一）怎么申请" in lines
    assert "持有残疾人证、户籍在本区的重度残疾人，每户每年补贴600元。" in lines
    assert "一级 | 800元" in lines


def test_pdf_text_layer_is_read_with_title_and_creation_date(tmp_path, write_doc):
    path = write_doc(tmp_path, "subsidy.pdf", make_text_pdf(
        HEATING_PDF_LINES, title="Heating Subsidy Guide", created="D:20250301120000+08'00'"))

    doc = load_document(path)

    assert doc.title == "Heating Subsidy Guide"
    assert doc.date == "2025-03-01"
    for line in HEATING_PDF_LINES:
        assert line in doc.text


def test_pdf_without_metadata_is_titled_by_its_first_line(tmp_path, write_doc):
    path = write_doc(tmp_path, "subsidy-notice.pdf", make_text_pdf(HEATING_PDF_LINES))

    doc = load_document(path)

    assert doc.title == HEATING_PDF_LINES[0]
    assert doc.text.splitlines()[0] == f"# {HEATING_PDF_LINES[0]}"  # a heading, so chunks do not repeat it


def test_pdf_whose_first_line_is_a_sentence_is_titled_after_its_file_name(tmp_path, write_doc):
    path = write_doc(tmp_path, "subsidy-notice.pdf", make_text_pdf(HEATING_PDF_LINES[1:]))

    assert load_document(path).title == "subsidy-notice"


def test_plain_text_notice_is_titled_by_its_first_line(tmp_path, write_doc):
    path = write_doc(tmp_path, "notice-12.txt", "关于2025年冬季取暖补贴的通知\n2025年10月8日，区民政局……\n"
                     "今年取暖补贴按建筑面积每平方米补5元。\n")

    doc = load_document(path)

    assert doc.title == "关于2025年冬季取暖补贴的通知"
    assert doc.text.splitlines() == ["# 关于2025年冬季取暖补贴的通知", "", "2025年10月8日，区民政局……",
                                     "今年取暖补贴按建筑面积每平方米补5元。"]


@pytest.mark.parametrize("first", [
    "各位居民：",  # a salutation leads into the next line
    "今年取暖补贴按建筑面积每平方米补5元，低保户另外加200元。",  # a sentence
    "2025-10-08",  # a date
    "一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十多",
])
def test_first_line_that_is_no_title_leaves_the_file_name(tmp_path, write_doc, first):
    path = write_doc(tmp_path, "notice-12.txt", f"{first}\n有问题找网格员小王。\n")

    doc = load_document(path)

    assert doc.title == "notice-12"
    assert doc.text == f"{first}\n有问题找网格员小王。"


@pytest.mark.parametrize("body, date", [
    ("发布日期：2026-12-01\n今年取暖补贴按面积计算。", "2026-12-01"),
    ("印发时间: 2025年3月1日\n今年取暖补贴按面积计算。", "2025-03-01"),
    ("今年取暖补贴按面积计算。\n河西区民政局\n2025年3月1日", "2025-03-01"),
    ("今年取暖补贴按面积计算。\n（2025/3/1）", "2025-03-01"),
    ("2020年2月4日，区民政局召开会议。\n今年取暖补贴按面积计算。", None),  # an event in a sentence
    ("发布日期：2025-02-30\n今年取暖补贴按面积计算。", None),  # no such day
])
def test_a_date_the_document_states_is_read_from_its_body(tmp_path, write_doc, body, date):
    path = write_doc(tmp_path, "notice.txt", f"关于冬季取暖补贴的通知\n{body}\n")

    assert load_document(path).date == date


def test_a_date_in_the_body_comes_after_front_matter_and_before_the_file_name(tmp_path, write_doc):
    front = write_doc(tmp_path, "a(2024-01-01).md", "---\ndate: 2025-05-06\n---\n发布日期：2026-12-01\n正文。\n")
    body = write_doc(tmp_path, "b(2024-01-01).md", "发布日期：2026-12-01\n正文。\n")

    assert (load_document(front).date, load_document(body).date) == ("2025-05-06", "2026-12-01")


def test_single_line_text_is_not_its_own_title(tmp_path, write_doc):
    path = write_doc(tmp_path, "tip.txt", "楼道里别堆纸箱子\n")

    assert load_document(path).title == "tip"


def test_a_docx_table_stays_where_it_stands_under_its_heading(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("补贴办法", level=0)
    document.add_heading("一、补贴标准", level=1)
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "一级", "800元"
    document.add_heading("二、怎么申请", level=1)
    document.add_paragraph("到社区服务站登记。")
    path = tmp_path / "rule.docx"
    document.save(str(path))

    lines = [line for line in load_document(path).text.splitlines() if line]

    assert lines.index("# 一、补贴标准") < lines.index("一级 | 800元") < lines.index("# 二、怎么申请")


def test_docx_without_title_or_heading_styles_is_titled_by_its_first_paragraph(tmp_path):
    import docx

    document = docx.Document()
    document.add_paragraph("老年人助餐补贴申领办法")
    document.add_paragraph("年满60周岁的本区户籍老人，每餐补贴3元。")
    path = tmp_path / "scan-0457.docx"
    document.save(str(path))

    doc = load_document(path)

    assert doc.title == "老年人助餐补贴申领办法"
    assert doc.text.splitlines()[0] == "# 老年人助餐补贴申领办法"


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_chinese_text_file_in_legacy_encoding_is_decoded_without_mojibake(tmp_path, write_doc, encoding):
    text = ("关于2025年冬季取暖补贴的通知\n\n各位居民：\n今年取暖补贴按建筑面积每平方米补5元，"
            "低保户另外加200元。有问题找网格员小王，电话138****6621。\n")
    path = write_doc(tmp_path, "notice.txt", text, encoding=encoding)

    doc = load_document(path)

    assert doc.text == "# " + text.strip()  # its first line is its title, kept as a heading
    assert doc.title == "关于2025年冬季取暖补贴的通知"


def test_gb18030_text_with_characters_outside_gbk_is_decoded_without_mojibake(tmp_path, write_doc):
    text = "困难救助申请登记\n申请人：刘䶮，住华江里3号楼2门501，家里老人瘫痪在床，想申请临时救助。"
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")  # the sample must really need GB18030
    path = write_doc(tmp_path, "application.txt", text, encoding="gb18030")

    assert load_document(path).text.replace("# ", "", 1).replace("\n\n", "\n") == text


def test_utf8_text_with_byte_order_mark_loses_the_mark(tmp_path, write_doc):
    path = write_doc(tmp_path, "note.txt", "\ufeff楼道里别堆纸箱子，着火了跑不出去。", encoding="utf-8")

    assert load_document(path).text == "楼道里别堆纸箱子，着火了跑不出去。"


def test_truncated_pdf_is_refused_as_damaged(tmp_path, write_doc):
    whole = make_text_pdf(HEATING_PDF_LINES, title="Heating Subsidy Guide")
    path = write_doc(tmp_path, "cut.pdf", whole[: len(whole) // 2])

    with pytest.raises(LoadError, match="PDF.*(损坏|不完整|无法解析)"):
        load_document(path)


def test_pdf_with_user_password_is_refused_as_encrypted(tmp_path, write_doc):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_text_pdf(HEATING_PDF_LINES))))
    writer.encrypt(user_password="jiedao2025", owner_password="admin2025")
    buffer = io.BytesIO()
    writer.write(buffer)
    path = write_doc(tmp_path, "locked.pdf", buffer.getvalue())

    with pytest.raises(LoadError, match="加密"):
        load_document(path)


WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")  # CI installs fonts-wqy-microhei


def notice_image(lines: list[str]):
    """A photo-like image of a notice: black Chinese text on white (rendered, as a scan would show it)."""
    from PIL import Image, ImageDraw, ImageFont

    assert WQY.exists(), "the OCR tests need a CJK font: apt-get install -y fonts-wqy-microhei"
    image = Image.new("RGB", (1000, 90 + 70 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(WQY), 36)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 70 * i), line, font=font, fill="black")
    return image


NOTICE_LINES = ["老年人助餐补贴申领办法", "年满60周岁的老人每餐补贴3元。", "到社区服务站登记办卡。"]


@pytest.mark.slow
def test_a_photo_of_a_notice_is_read_by_ocr_and_titled_by_its_first_line(tmp_path):
    path = tmp_path / "notice-photo.png"
    notice_image(NOTICE_LINES).save(path)

    doc = load_document(path)

    assert doc.title == "老年人助餐补贴申领办法"
    assert "每餐补贴3元" in doc.text and "社区服务站" in doc.text


@pytest.mark.slow
def test_a_scanned_pdf_without_a_text_layer_is_read_by_ocr(tmp_path):
    path = tmp_path / "scan.pdf"
    notice_image(NOTICE_LINES).save(path, "PDF", resolution=100)  # an image only: no text layer

    doc = load_document(path)

    assert doc.title == "老年人助餐补贴申领办法" and "每餐补贴3元" in doc.text


def test_a_blank_scan_is_refused_saying_nothing_was_recognised(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    path = tmp_path / "scan.pdf"
    with open(path, "wb") as fh:
        writer.write(fh)

    with pytest.raises(LoadError, match="没有文字层.*没有识别出文字"):
        load_document(path)


def test_a_scan_too_long_to_read_is_refused_before_any_page_is_read(tmp_path):
    from pypdf import PdfWriter

    from bot.retrieval.ocr import MAX_PAGES

    writer = PdfWriter()
    for _ in range(MAX_PAGES + 1):
        writer.add_blank_page(595, 842)
    path = tmp_path / "long-scan.pdf"
    with open(path, "wb") as fh:
        writer.write(fh)

    with pytest.raises(LoadError, match=f"{MAX_PAGES + 1} 页的扫描件.*请拆分"):
        load_document(path)


def test_a_broken_image_is_refused_with_a_reason(tmp_path, write_doc):
    path = write_doc(tmp_path, "photo.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")

    with pytest.raises(LoadError, match="图片文件损坏"):
        load_document(path)


def test_binary_junk_named_txt_is_refused_as_not_text(tmp_path, write_doc):
    path = write_doc(tmp_path, "photo.txt", os.urandom(8192))

    with pytest.raises(LoadError, match="不是文本文件|无法识别文件编码"):
        load_document(path)


def test_binary_junk_without_zero_bytes_is_refused_too(tmp_path, write_doc):
    junk = bytes(b for b in os.urandom(12000) if b != 0)
    path = write_doc(tmp_path, "archive.txt", junk)

    with pytest.raises(LoadError, match="不是文本文件|无法识别文件编码"):
        load_document(path)


def test_damaged_docx_is_refused_with_a_reason(tmp_path, write_doc):
    path = write_doc(tmp_path, "minutes.docx", b"PK\x03\x04" + os.urandom(2000))

    with pytest.raises(LoadError, match="Word"):
        load_document(path)


def test_empty_file_is_refused_as_empty(tmp_path, write_doc):
    path = write_doc(tmp_path, "blank.md", b"")

    with pytest.raises(LoadError, match="文件为空"):
        load_document(path)


def test_file_with_only_front_matter_is_refused_as_having_no_text(tmp_path, write_doc):
    path = write_doc(tmp_path, "stub.md", "---\ntitle: 待补充\n---\n\n   \n")

    with pytest.raises(LoadError, match="没有可用的文字"):
        load_document(path)


@pytest.mark.parametrize("name", ["统计表.xlsx", "说明.doc", "README"])
def test_unsupported_file_type_is_refused_naming_the_type(tmp_path, write_doc, name):
    path = write_doc(tmp_path, name, "第一季度接诉即办统计")

    with pytest.raises(LoadError, match="不支持的文件类型") as caught:
        load_document(path)
    assert (Path(name).suffix or "无扩展名") in str(caught.value)


def test_decode_text_refuses_a_program_file_by_its_zero_bytes():
    elf_header = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\x3e\x00" + bytes(200)

    with pytest.raises(LoadError, match="二进制"):
        decode_text(elf_header)


def test_front_matter_gives_the_days_a_policy_is_in_force(tmp_path, write_doc):
    path = write_doc(tmp_path, "rule.md", "---\ntitle: 补贴办法\neffective: 2026-1-1\nexpires: 2026-12-31\n---\n正文。\n")
    plain = write_doc(tmp_path, "plain.md", "---\ntitle: 补贴办法\n---\n正文。\n")

    assert (load_document(path).effective, load_document(path).expires) == ("2026-01-01", "2026-12-31")
    assert (load_document(plain).effective, load_document(plain).expires) == (None, None)


@pytest.mark.parametrize("effective, expires, note", [
    (None, None, ""),
    ("2026-12-10", None, "2026-12-10 起生效"),
    (None, "2026-12-01", "已于 2026-12-01 过期"),
    (None, "2026-12-31", "25 天后过期"),
    (None, "2027-06-30", ""),
])
def test_the_knowledge_page_says_when_a_document_is_not_or_no_longer_in_force(effective, expires, note):
    from bot.console.kb_admin import in_force_note

    said = in_force_note(effective, expires, today="2026-12-06")

    assert said.startswith(note) if note else said == ""


@pytest.mark.parametrize("value, audience", [("staff", "staff"), ("工作人员", "staff"), ("staf", "staff"),
                                             ("网格员", "staff"), ("public", "public"), ("居民", "public"),
                                             ("", "public")])
def test_front_matter_audience_keeps_a_document_from_residents_and_a_typo_fails_closed(tmp_path, write_doc,
                                                                                     value, audience):
    path = write_doc(tmp_path, "guide.md", f"---\ntitle: 工作手册\naudience: {value}\n---\n# 工作手册\n走访要求。\n")
    assert load_document(path).audience == audience


def test_a_document_without_an_audience_is_for_everyone(tmp_path, write_doc):
    assert load_document(write_doc(tmp_path, "g.md", "# 指南\n正文。\n")).audience == "public"
