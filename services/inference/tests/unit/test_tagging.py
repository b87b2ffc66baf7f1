"""Tags for real photos (scikit-image's), in English and Chinese, and none on photos that hold
no ImageNet object (textures, documents, micrographs, sky)."""

from __future__ import annotations

import pytest

from imgtag_common.errors import InvalidArgument
from imgtag_inference.domain.engine import COLOUR_MODEL, ImageRequest
from imgtag_inference.domain.vocabulary import imagenet_vocabulary

from .conftest import photo, preview


def _objects(analysis) -> dict[str, object]:
    return {t.label: t for t in analysis.tags if t.model != COLOUR_MODEL}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chelsea.png", {"cat": "猫", "animal": "动物"}),
        ("coffee.png", {"coffee": "咖啡", "cup": "杯子", "espresso": "浓缩咖啡"}),
        ("rocket.jpg", {"rocket": "火箭", "vehicle": "交通工具"}),
        ("motorcycle_left.png", {"motorcycle": "摩托车", "vehicle": "交通工具"}),
        ("camera.png", {"tripod": "三脚架", "camera": "相机"}),
    ],
)
@pytest.mark.parametrize("encoded", [photo, preview], ids=["original", "webp-preview"])
async def test_known_photos_get_their_tags_in_both_languages(engine, name, expected, encoded) -> None:
    tags = _objects(await engine.analyse(ImageRequest(data=encoded(name))))
    for label, chinese in expected.items():
        assert label in tags, sorted(tags)
        assert tags[label].names == {"en": label, "zh": chinese}
        assert 0.5 <= tags[label].confidence <= 1
        assert tags[label].model == "models/efficientnet-lite0"


async def test_the_cat_is_a_cat_even_though_no_single_breed_is_sure(engine) -> None:
    tags = _objects(await engine.analyse(ImageRequest(data=photo("chelsea.png"))))
    assert tags["cat"].category == "animal"
    assert not {"tabby cat", "tiger cat", "egyptian cat"} & set(tags)  # each breed alone is below 0.5


@pytest.mark.parametrize("encoded", [photo, preview], ids=["original", "webp-preview"])
async def test_the_astronaut_gets_no_object_tag_since_imagenet_has_no_person_class(engine, encoded) -> None:
    # EfficientNet's best guesses are football helmet (0.16) and bobsled (0.11; 0.21 in WebP).
    analysis = await engine.analyse(ImageRequest(data=encoded("astronaut.png")))
    assert _objects(analysis) == {}
    assert {t.category for t in analysis.tags} == {"color"}


@pytest.mark.parametrize(
    "name",
    [
        "grass.png",
        "brick.png",
        "gravel.png",
        "hubble_deep_field.jpg",
        "text.png",
        "page.png",
        "moon.png",
        "chessboard_RGB.png",
        "microaneurysms.png",
        "clock_motion.png",
        "ihc.png",
        "retina.jpg",
        "logo.png",
    ],
)
@pytest.mark.parametrize("encoded", [photo, preview], ids=["original", "webp-preview"])
async def test_textures_documents_and_micrographs_get_no_object_tags(engine, name, encoded) -> None:
    assert _objects(await engine.analyse(ImageRequest(data=encoded(name)))) == {}


async def test_colour_tags_come_with_the_objects(engine) -> None:
    analysis = await engine.analyse(ImageRequest(data=photo("chelsea.png")))
    colours = {t.label: t for t in analysis.tags if t.model == COLOUR_MODEL}
    assert "brown" in colours and colours["brown"].names["zh"] == "棕色"
    assert all(t.category == "color" for t in colours.values())


async def test_a_caller_can_ask_for_fewer_tags_or_more_confidence(engine) -> None:
    analysis = await engine.analyse(ImageRequest(data=photo("chelsea.png"), max_tags=2))
    assert [t.label for t in analysis.tags] == ["animal", "mammal"]
    strict = await engine.analyse(ImageRequest(data=photo("chelsea.png"), min_confidence=0.93))
    assert {t.label for t in strict.tags} == {"animal", "mammal"}


async def test_images_too_small_to_judge_get_no_tags_but_still_an_embedding(engine) -> None:
    import io

    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(out, "PNG")
    analysis = await engine.analyse(ImageRequest(data=out.getvalue(), want_embeddings=True))
    assert analysis.tags == [] and len(analysis.embeddings) == 1


async def test_an_undecodable_image_is_invalid_argument(engine) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await engine.analyse(ImageRequest(data=b"\x89PNG\r\n\x1a\n not really"))
    assert caught.value.reason == "IMAGE_UNDECODABLE"


async def test_one_bad_image_fails_only_its_own_item(engine) -> None:
    results = await engine.analyse_many(
        [ImageRequest(data=photo("coffee.png")), ImageRequest(data=b"garbage"), ImageRequest(data=photo("chelsea.png"))]
    )
    assert isinstance(results[1], InvalidArgument)
    assert "coffee" in _objects(results[0]) and "cat" in _objects(results[2])


async def test_embeddings_name_the_model_and_space_and_are_normalized(engine) -> None:
    analysis = await engine.analyse(ImageRequest(data=photo("chelsea.png"), want_embeddings=True))
    (embedding,) = analysis.embeddings
    assert embedding.model == "models/efficientnet-lite0"
    assert embedding.space == engine.models_loaded.classifier.space
    assert embedding.space.startswith("efficientnet-lite0:") and len(embedding.values) == 1280
    assert abs(float(embedding.values @ embedding.values) - 1) < 1e-5


async def test_visual_embeddings_put_similar_photos_closer(engine) -> None:
    requests = [ImageRequest(data=photo(n)) for n in ("motorcycle_left.png", "motorcycle_right.png", "chelsea.png")]
    left, right, cat = await engine.embed_images(requests)
    assert float(left.values @ right.values) > float(left.values @ cat.values) + 0.2


def test_every_class_has_a_unique_english_label_and_a_chinese_name() -> None:
    vocabulary = imagenet_vocabulary()
    labels = [c.tag.label for c in vocabulary.classes]
    assert len(set(labels)) == 1000
    for cls in vocabulary.classes:
        assert cls.tag.label == cls.tag.label.lower() and cls.tag.names["zh"], cls
        assert cls.wordnet_id.startswith("n") and cls.lemmas
    broader = {t.label for t in vocabulary.broader.values()}
    assert not broader & set(labels) - {"cup", "pig", "mushroom"}, broader & set(labels)
    tabby = vocabulary.classes[281]
    assert tabby.lemmas[0] == "tabby" and tabby.broader[:3] == ("cat", "mammal", "animal")
