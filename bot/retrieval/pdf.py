"""Read the text layer of a PDF with pypdf, with clear reasons when that is impossible."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.errors import LoadError

MAX_PAGES = 2000  # a knowledge document longer than this is almost certainly a mistake


def read_pdf(path: Path) -> tuple[str | None, str | None, str, bool]:
    """Return (title, date, text, read by OCR) of a PDF: its text layer, or its pages by OCR when it has none."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns loudly about junk
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:
                raise LoadError("PDF 已加密，无法读取") from exc
            if not ok:
                raise LoadError("PDF 已加密，无法读取")
        pages = reader.pages
        if len(pages) > MAX_PAGES:
            raise LoadError(f"PDF 页数过多（{len(pages)} 页，上限 {MAX_PAGES}）")
        texts = [page.extract_text() or "" for page in pages]
        meta = reader.metadata
    except LoadError:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LoadError(f"PDF 文件损坏或不完整（{type(exc).__name__}）") from exc
    except Exception as exc:  # pypdf raises many internal types on truncated files
        raise LoadError(f"PDF 无法解析（{type(exc).__name__}）") from exc
    text = "\n".join(texts)
    ocr = not text.strip()
    if ocr:  # a scan: read its pages by OCR
        from bot.retrieval.ocr import read_scanned_pdf

        text = read_scanned_pdf(path, len(texts))
    title = (meta.title if meta and meta.title else None) or None
    date = None
    if meta and meta.creation_date:
        date = meta.creation_date.date().isoformat()
    return title, date, text, ocr
