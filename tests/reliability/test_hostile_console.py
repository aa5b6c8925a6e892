"""Hostile input that ends up in the staff console: markup residents send, and documents admins upload.

- HTML/JS and SQL a resident writes are stored verbatim and shown escaped (never a live tag).
- Upload names with path traversal (property-based) land in the knowledge folder or are refused.
- A zip bomb renamed .docx and a PDF with thousands of pages are refused with a clear reason,
  within bounded time, and nothing crashes.
"""

from __future__ import annotations

import io
import os
import re
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from tests.reliability.support import PROPERTY, ROOT, Site, count

MARKUP = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg/onload=alert(document.cookie)>',
    "</textarea></dd><script src=//evil.example/x.js></script>",
    "<a href=\"javascript:alert(3)\">点我</a>",
    "{{7*7}}{{ config }}{% for x in () %}",
    "'; DROP TABLE ticket;--",
    "\" OR 1=1; DELETE FROM staff; --",
]


def text_on_page(html: str) -> str:
    """The detail's description cell (where a resident's words are shown)."""
    match = re.search(r'<dt>问题</dt><dd class="text">(.*?)</dd>', html, re.S)
    assert match, html[:2000]
    return match.group(1)


def test_markup_and_sql_a_resident_sends_are_stored_verbatim_and_shown_escaped(make_site):
    site = make_site()
    worker = site.staff("w1", name="王芳")
    site_pages = site.login("w1")
    for number, payload in enumerate(MARKUP):
        count("console: markup and SQL payloads filed and shown")
        report = f"景村里3号楼2单元暖气不热{payload}"
        ticket_id = site.report(f"r-markup-{number}", report)
        ticket = site.service.store.get(ticket_id)
        assert ticket.description == report and ticket.assignee_id == worker.staff_id

        detail = site_pages.get(f"/console/tickets/{ticket_id}")
        listing = site_pages.get("/console/tickets")

        assert detail.status_code == 200 and "script-src 'self'" in detail.headers["content-security-policy"]
        assert text_on_page(detail.text) == str(escape(report))
        for page in (detail.text, listing.text):
            if "<" in payload:
                assert payload not in page  # never the live tag
        assert str(escape(report[:60])) in listing.text
    with site.service.sessions() as s:
        from sqlalchemy import func, select

        from bot.tickets.models import Staff, Ticket

        assert s.scalar(select(func.count()).select_from(Ticket)) == len(MARKUP)
        assert s.scalar(select(func.count()).select_from(Staff)) == 1


def test_a_resolution_note_with_markup_is_shown_escaped_to_the_supervisor(make_site):
    site = make_site()
    site.staff("w1")
    site.staff("s1", role="supervisor", community="jingcun")
    ticket_id = site.report("r1")
    worker = site.login("w1")
    page = f"/console/tickets/{ticket_id}"
    worker.post(f"{page}/accept", data={"csrf": worker.csrf, "status": "assigned"})
    note = "已修好<script>fetch('/console/staff')</script>"
    resolved = worker.post(f"{page}/resolve", data={"csrf": worker.csrf, "status": "accepted", "note": note})

    shown = site.login("s1").get(page).text

    count("console: markup payloads in resolution notes", 1)
    assert resolved.status_code == 303 and site.service.store.get(ticket_id).resolution_note == note
    assert "<script>fetch" not in shown and str(escape(note)) in shown


# -- uploads -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("uploads"), max_upload_mb=2)
    site.staff("a1", role="admin", name="管理员")
    site.admin = site.login("a1")
    yield site
    site.close()


def upload(site: Site, name: str, content: bytes, ingest: bool = False):
    data = {"csrf": site.admin.csrf} | ({"ingest": "1"} if ingest else {})
    return site.admin.post("/console/kb/upload", data=data, files={"file": (name, content, "application/octet-stream")})


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


TRAVERSAL = ["..", ".", "/", "\\", "../", "..\\", "../../", "%2e%2e%2f", "..%2f", "....//", "/etc/", "C:\\Windows\\",
             "\\\\server\\share\\", "~/", "knowledge/", "index/", "../index/", "\x00", "\u202e", " ", "_", ".", "file:"]
names = st.builds(lambda parts, stem, suffix: "".join(parts) + stem + suffix,
                  st.lists(st.sampled_from(TRAVERSAL), max_size=6),
                  st.one_of(st.sampled_from(["passwd", "config", "CURRENT", "社区通知", ".bashrc", "x", ""]),
                            st.text(max_size=20)),
                  st.sampled_from([".md", ".txt", ".MD", ".html", ".pdf", ".docx", ".exe", ".toml", "", ".md.exe",
                                   ".md\x00.exe", ".md/", ".md%00"]))


@settings(PROPERTY, max_examples=120)
@given(name=names)
def test_an_upload_lands_in_the_knowledge_folder_or_is_refused_whatever_its_name(kb, name):
    basetemp = kb.folder.parent
    before = files_under(basetemp)
    count("console: upload names tried")

    response = upload(kb, name, "# 测试文件\n\n上传的名字很奇怪。".encode())

    assert response.status_code in (303, 400), (name, response.status_code)
    new = files_under(basetemp) - before
    # a new document lands in the knowledge folder; the text it replaced, in that folder's hidden versions store
    versions = kb.docs / ".versions"
    assert all(path.parent == kb.docs or (path.is_relative_to(versions) and path.parent.parent == versions)
               for path in new), (name, new)
    if response.status_code == 303:
        saved = unquote(re.search(r"name=([^&]*)", response.headers["location"]).group(1))
        assert "/" not in saved and "\\" not in saved and not saved.startswith(".") and (kb.docs / saved).is_file()
        count("console: upload names saved (made safe)")
    else:
        assert "文件" in response.text or "类型" in response.text  # a sentence saying why


def test_the_knowledge_page_lists_every_upload_without_markup(kb):
    page = kb.admin.get("/console/kb")
    assert page.status_code == 200 and "<script" not in page.text.lower()


def minimal_docx(document_xml_chunks, chunks: int) -> bytes:
    """A .docx whose word/document.xml is `chunks` repetitions of a chunk: small on disk, huge unpacked."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                   'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                   'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/'
                   'word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
                   'document.main+xml"/></Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
        with z.open("word/document.xml", "w") as part:
            part.write(b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                       b'wordprocessingml/2006/main"><w:body>')
            for _ in range(chunks):
                part.write(document_xml_chunks)
            part.write(b"</w:body></w:document>")
    return buffer.getvalue()


ZIP_BOMB_MB = 200


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    paragraph = ("<w:p><w:r><w:t>" + "暖气不热" * 8 + "</w:t></w:r></w:p>").encode() * 1000
    return minimal_docx(paragraph, ZIP_BOMB_MB * 2**20 // len(paragraph))


def test_a_zip_bomb_renamed_docx_is_taken_or_refused_without_a_crash(kb, zip_bomb):
    count("console: zip bombs uploaded")
    response = upload(kb, "社区通知（压缩炸弹）.docx", zip_bomb)
    assert len(zip_bomb) < kb.service.kb_admin.max_bytes < ZIP_BOMB_MB * 2**20  # small on disk, huge unpacked
    assert response.status_code in (303, 400), response.status_code
    assert kb.admin.get("/console/kb").status_code == 200
    for path in kb.docs.glob("*.docx"):  # the next test re-ingests this folder; the bomb has its own test
        path.unlink()


def test_a_zip_bomb_is_refused_quickly_with_a_reason_the_admin_can_act_on(tmp_path, zip_bomb):
    site_folder = tmp_path / "bomb"
    from tests.reliability.support import copy_knowledge, write_site_config

    docs = copy_knowledge(site_folder)
    for extra in sorted(p for p in docs.rglob("*") if p.is_file())[3:]:  # three documents are enough beside the bomb
        extra.unlink()
    (docs / "社区通知.docx").write_bytes(zip_bomb)
    config = write_site_config(site_folder)
    started = time.monotonic()

    def limit_memory() -> None:  # a loader without a limit must not take the test machine down
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    try:
        result = subprocess.run([sys.executable, str(ROOT / "ingest.py"), "--config", str(config)], capture_output=True,
                                text=True, timeout=12, preexec_fn=limit_memory, cwd=site_folder,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail(f"ingest was still unpacking the bomb after {time.monotonic() - started:.0f} s")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "社区通知.docx" in result.stderr and re.search(r"过大|太大|超过|解压", result.stderr), result.stderr[-2000:]


def pdf_with_pages(pages: int, pad_bytes: int = 0) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue() + (b"\n%" + b"0" * pad_bytes + b"\n" if pad_bytes else b"")


def wait_for_job(site: Site, location: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page = site.admin.get(location).text
        if 'http-equiv="refresh"' not in page:
            return page
        assert time.monotonic() < deadline, "the re-ingest did not finish"
        time.sleep(0.05)


def test_a_pdf_of_thousands_of_pages_is_listed_as_failed_with_the_page_limit_and_the_rest_still_serves(kb):
    count("console: huge PDFs uploaded", 2)
    over_size = upload(kb, "全区政策汇编（超大）.pdf", pdf_with_pages(10, pad_bytes=3 * 2**20))
    response = upload(kb, "全区政策汇编.pdf", pdf_with_pages(2500), ingest=True)

    assert over_size.status_code == 413 and "文件太大了：最大 2 MB" in over_size.text
    assert response.status_code == 303, response.text[:500]
    job = wait_for_job(kb, response.headers["location"])
    listing = kb.admin.get("/console/kb").text
    entry = listing[listing.index("全区政策汇编.pdf"):][:600]
    assert "完成" in job and "导入失败" in entry and "页数过多（2500 页，上限 2000）" in entry
    [answer] = kb.say("r-pdf", "老人家食堂要带什么材料")
    assert "来源" in answer.text
