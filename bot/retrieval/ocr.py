"""Read scanned documents: photos of a notice (JPG/PNG) and PDFs without a text layer.

rapidocr-onnxruntime ships its Chinese PP-OCR models inside its wheel (nothing is
downloaded); pypdfium2 ships PDFium and renders a PDF's pages to images. A page
takes a few seconds on a CPU, so scans are limited in pages and in time, with a
reason an admin can act on when a scan is refused.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bot.errors import LoadError

MAX_PAGES = 30  # a scanned document longer than this is refused: split it, or find the text version
MAX_SECONDS = 600  # reading one scan may take this long, no more
RENDER_SCALE = 2.0  # 144 dpi: small print of an A4 notice still reads
MAX_PIXELS = 40_000_000  # an image larger than this is refused (a decompression bomb, or a poster scan)

_engine = None
_engine_lock = threading.Lock()


def _ocr():
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR()
        return _engine


def lines_of(image) -> list[str]:
    """The text lines of one image (a path, or an RGB numpy array), top to bottom."""
    result, _ = _ocr()(image)
    if not result:
        return []
    boxes = sorted(result, key=lambda r: (round(min(p[1] for p in r[0]) / 12), min(p[0] for p in r[0])))
    return [text.strip() for _, text, _score in boxes if text.strip()]


def read_image(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise LoadError(f"图片太大（{image.width}×{image.height}），请缩小后再上传")
            image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise LoadError("图片文件损坏或不是 JPG/PNG 图片") from exc
    text = "\n".join(lines_of(str(path)))
    if not text.strip():
        raise LoadError("图片里没有识别出文字")
    return text


def read_scanned_pdf(path: Path, pages: int) -> str:
    """OCR every page of a PDF without a text layer; refuse one too long to read in reasonable time."""
    if pages > MAX_PAGES:
        raise LoadError(f"PDF 没有文字层，是 {pages} 页的扫描件，超过识别上限 {MAX_PAGES} 页；请拆分，或提供文字版")
    import numpy as np
    import pypdfium2 as pdfium

    started = time.monotonic()
    document = pdfium.PdfDocument(str(path))
    try:
        out = []
        for index in range(len(document)):
            if time.monotonic() - started > MAX_SECONDS:
                raise LoadError(f"扫描件识别超过 {MAX_SECONDS // 60} 分钟（读到第 {index} 页），请拆分后再上传")
            bitmap = document[index].render(scale=RENDER_SCALE)
            image = np.asarray(bitmap.to_pil().convert("RGB"))
            out.extend(lines_of(image))
    finally:
        document.close()
    text = "\n".join(out)
    if not text.strip():
        raise LoadError("PDF 没有文字层，扫描件里也没有识别出文字")
    return text
