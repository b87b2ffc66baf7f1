"""OCR (rapidocr, optional per request): the text of a document page."""

from __future__ import annotations

import numpy as np
import pytest

from imgtag_inference.adapters.ocr import RapidOcrReader
from imgtag_inference.domain import images

from .conftest import photo


@pytest.fixture(scope="module")
def reader() -> RapidOcrReader:
    return RapidOcrReader()


def test_the_text_of_a_page_is_read(reader) -> None:
    text = reader.read(np.asarray(images.decode(photo("page.png"))))
    assert "Region-based segmentation" in text
    assert "markers" in text and len(text.splitlines()) >= 5


def test_a_blank_image_has_no_text(reader) -> None:
    assert reader.read(np.full((64, 64, 3), 255, np.uint8)) == ""
