"""Reading vision-language answers: lenient with fences, prose and answers cut at the token
limit; never guessing a name from half a word; garbage and refusals told apart."""

from __future__ import annotations

import json

import pytest

from imgtag_inference.domain.vision_output import (
    INSTRUCTIONS,
    VisionOutputInvalid,
    VisionRefusal,
    build_prompt,
    parse_description,
)

GOOD = {
    "caption": "A tabby cat asleep on a red sofa.",
    "objects": [{"en": "Cat", "zh": "猫", "confidence": 0.93}, {"en": "sofa", "zh": "沙发", "confidence": 0.7}],
    "colors": [{"en": "red", "zh": "红色", "confidence": 0.8}],
    "scene": {"en": "living room", "zh": "客厅", "confidence": 0.6},
    "mood": {"en": "cozy", "zh": "温馨", "confidence": 0.55},
}


def _names(parsed) -> set[tuple[str, str, str]]:
    return {(t.category, t.names["en"], t.names.get("zh", "")) for t in parsed.tags}


def test_a_strict_answer_gives_caption_and_bilingual_tags_per_category() -> None:
    parsed = parse_description(json.dumps(GOOD, ensure_ascii=False))
    assert parsed.caption == GOOD["caption"] and not parsed.truncated
    assert _names(parsed) == {
        ("object", "cat", "猫"),  # lower-cased: the canonical English name
        ("object", "sofa", "沙发"),
        ("color", "red", "红色"),
        ("scene", "living room", "客厅"),
        ("mood", "cozy", "温馨"),
    }
    assert {t.label: t.confidence for t in parsed.tags}["cat"] == pytest.approx(0.93)


def test_code_fences_and_prose_around_the_object_are_ignored() -> None:
    text = "Sure! Here it is:\n```json\n" + json.dumps(GOOD) + "\n```\nAnything else?"
    assert parse_description(text).caption == GOOD["caption"]
    assert parse_description("The JSON: " + json.dumps(GOOD) + " -- done").caption == GOOD["caption"]


def test_an_answer_cut_short_keeps_its_complete_members_and_drops_half_words() -> None:
    full = json.dumps(GOOD, ensure_ascii=False)
    cut = full[: full.index('"sofa"') + 3]  # inside the second object's name
    parsed = parse_description(cut)
    assert parsed.truncated and parsed.caption == GOOD["caption"]
    assert _names(parsed) == {("object", "cat", "猫")}  # "so" is not a tag
    # cut inside the caption: nothing complete but the opening -> unusable
    with pytest.raises(VisionOutputInvalid):
        parse_description('{"caption": "A tabby cat asle')
    # the provider said it hit the limit although the JSON closed
    assert parse_description(json.dumps(GOOD), cut_short=True).truncated


def test_names_as_plain_strings_percentages_and_other_spellings_are_understood() -> None:
    text = json.dumps(
        {
            "description": "Two dogs.",
            "objects": ["dog", "狗", {"name": "Ball", "chinese": "球", "score": 85}],
            "colours": "brown",
            "tags": [{"en": "park", "zh": "公园", "category": "scene", "confidence": 0.5}],
        },
        ensure_ascii=False,
    )
    parsed = parse_description(text)
    assert parsed.caption == "Two dogs."
    names = {(t.category, t.label): t for t in parsed.tags}
    assert set(names) == {("object", "dog"), ("object", "ball"), ("color", "brown"), ("scene", "park")}
    assert names[("object", "ball")].names == {"en": "ball", "zh": "球"}
    assert names[("object", "ball")].confidence == pytest.approx(0.85)
    assert names[("object", "dog")].confidence == pytest.approx(0.7)  # none given: the default


def test_prose_without_json_is_invalid_and_an_error_object_is_a_refusal() -> None:
    with pytest.raises(VisionOutputInvalid, match="no JSON object"):
        parse_description("I think this is a nice picture of a cat.")
    with pytest.raises(VisionOutputInvalid, match="neither a caption nor a tag"):
        parse_description('{"objects": [], "note": "nothing"}')
    with pytest.raises(VisionRefusal, match="cannot describe people"):
        parse_description('{"error": "I cannot describe people."}')


def test_the_prompt_names_the_caption_language_and_wraps_in_an_admins_template() -> None:
    zh = build_prompt("", "zh")
    assert "written in Simplified Chinese" in zh and '"zh" is always Simplified Chinese' in zh
    assert "written in English" in build_prompt("", "en-GB")
    wrapped = build_prompt("<|im_start|>user\n<image>{instructions}<|im_end|>", "en")
    assert wrapped.startswith("<|im_start|>user\n<image>You describe photos") and wrapped.endswith("<|im_end|>")
    assert "{language}" not in wrapped
    assert build_prompt("Describe in {language} as JSON.", "ja") == "Describe in Japanese as JSON."
    assert "{language}" in INSTRUCTIONS
