"""Multilingual text embeddings (Universal Sentence Encoder Multilingual)."""

from __future__ import annotations

import numpy as np
import pytest

from imgtag_common.errors import InvalidArgument, NotFound


async def test_chinese_and_english_for_the_same_thing_are_closer_than_unrelated_words(engine) -> None:
    cat_zh, cat_en, car_en, car_zh, sleeping_zh, sleeping_en = (
        e.values
        for e in await engine.embed_texts(
            ["猫", "cat", "car", "汽车", "一只猫在沙发上睡觉", "a cat sleeping on a sofa"]
        )
    )
    assert cat_zh @ cat_en > cat_zh @ car_en + 0.3
    assert car_zh @ car_en > car_zh @ cat_en + 0.3
    assert sleeping_zh @ sleeping_en > sleeping_zh @ car_en + 0.5


async def test_text_embeddings_record_their_model_and_space(engine) -> None:
    (embedding,) = await engine.embed_texts(["coffee"])
    spaces, default = engine.spaces()
    assert embedding.model == "models/universal-sentence-encoder-multilingual"
    assert embedding.space == default == engine.models_loaded.text.space
    assert len(embedding.values) == 512 and abs(float(np.linalg.norm(embedding.values)) - 1) < 1e-5
    assert [s.cross_modal for s in spaces] == [False, False]  # no CLIP loaded here


async def test_an_unknown_space_is_not_found_and_empty_or_huge_batches_are_refused(engine) -> None:
    with pytest.raises(NotFound) as caught:
        await engine.embed_texts(["x"], "clip-old:0123456789ab")
    assert caught.value.reason == "EMBEDDING_SPACE_NOT_FOUND"
    with pytest.raises(InvalidArgument):
        await engine.embed_texts([])
    with pytest.raises(InvalidArgument):
        await engine.embed_texts(["x"] * 257)
