"""Pictures of pages (PNG, JPEG, TIFF), read by OCR; a TIFF's frames are its pages.

Pillow reads the header first: a picture whose pixels pass ``Limits.pixels`` (a
decompression bomb: a few kilobytes that decode to gigabytes) is refused before a pixel
is decoded, and so is a file with more frames than the OCR page limit.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from corpus.formats import Extracted, FormatError, Limits, TooBig, mismatch, ocr, sniff
from corpus.formats.layout import layout

# Pillow's own bomb check (a warning past 89 M pixels, an error past twice that) gives way to
# Limits.pixels, checked on every frame before it is decoded, with a message naming the setting.
Image.MAX_IMAGE_PIXELS = None
_SIGNATURES = {"png": (b"\x89PNG\r\n\x1a\n",), "jpeg": (b"\xff\xd8\xff",), "tiff": (b"II*\x00", b"MM\x00*")}


def extract(raw: bytes, kind: str, limits: Limits = Limits()) -> Extracted:
    if not raw.startswith(_SIGNATURES[kind]):
        raise mismatch(kind, sniff(raw))
    clock = limits.ocr_clock()
    pages, sizes, scanned, doubtful = [], [], [], []
    try:
        picture = Image.open(io.BytesIO(raw))
        frames = getattr(picture, "n_frames", 1)
        if frames > limits.ocr_pages:
            raise TooBig(f"{frames:,} pages; the limit is {limits.ocr_pages:,} (QA_MAX_OCR_PAGES)")
        for i in range(frames):
            picture.seek(i)
            width, height = picture.size
            if width * height > limits.pixels:
                raise TooBig(f"a picture of {width:,} × {height:,} pixels; the limit is {limits.pixels:,} "
                             "pixels (QA_MAX_IMAGE_PIXELS)")
            array, unit = _scaled(picture)
            lines, confidence = ocr.page(array, unit, limits.ocr_threads)
            pages.append(lines)
            sizes.append((array.shape[1] * unit, array.shape[0] * unit))  # the page's unit: the picture's pixel
            scanned.append(i + 1)
            if confidence < ocr.LOW_CONFIDENCE:
                doubtful.append(i + 1)
            clock.check()
    except TooBig:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise FormatError(f"damaged or unreadable {kind.upper()} picture ({exc})") from None
    if not any(pages):
        raise FormatError("no text found in the picture by OCR")
    laid = layout(pages, sizes)
    if not laid.text.strip():
        raise FormatError("no text besides running headers, footers and page numbers")
    # one picture is one page: its boxes are on page 1 whether or not the text counts pages
    return Extracted(laid.text, kind, laid.starts if len(pages) > 1 else (), {}, tuple(scanned), tuple(doubtful),
                     laid.boxes)


def _scaled(picture: Image.Image) -> tuple[np.ndarray, float]:
    """The frame as an RGB array whose longest side is at most ``ocr.MAX_SIDE``, and the
    picture's pixels one array pixel spans (the page's unit here is the picture's pixel)."""
    frame = ImageOps.exif_transpose(picture).convert("RGB")
    scale = min(1.0, ocr.MAX_SIDE / max(frame.size))
    if scale < 1:
        frame = frame.resize((round(frame.width * scale), round(frame.height * scale)), Image.Resampling.LANCZOS)
    return np.asarray(frame), 1 / scale


def frame_pixels(raw: bytes, number: int, longest: int) -> np.ndarray:
    """Frame ``number`` (1-based) of the picture ``raw``, upright, as RGB no larger than ``longest`` pixels a side."""
    try:
        picture = Image.open(io.BytesIO(raw))
        if not 1 <= number <= getattr(picture, "n_frames", 1):
            raise FormatError(f"no page {number} (the picture has {getattr(picture, 'n_frames', 1)})")
        picture.seek(number - 1)
        frame = ImageOps.exif_transpose(picture).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise FormatError(f"damaged or unreadable picture ({exc})") from None
    frame.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return np.asarray(frame)


def png_of(pixels: np.ndarray) -> bytes:
    """An RGB array as a PNG of 256 colours: a page of the article at 1,600 pixels took 560–700 KB
    in full colour and 190 KB so (17 ms more), its text's edges as smooth to the eye."""
    out = io.BytesIO()
    Image.fromarray(pixels).quantize(256, method=Image.Quantize.FASTOCTREE).save(out, "PNG")
    return out.getvalue()


def pdf_of(pages: list[np.ndarray], dpi: float, quality: int = 85) -> bytes:
    """A PDF whose pages are only these pictures (JPEG, at ``dpi``): a scan, as a scanner writes one."""
    images = [Image.fromarray(page).convert("RGB") for page in pages]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=dpi, quality=quality)
    return out.getvalue()
