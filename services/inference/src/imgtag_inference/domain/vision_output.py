"""What vision-language models are asked for, and how their answers are read.

The prompt asks for one strict JSON object (caption, objects, colors, scene, mood; tag names in
English and Chinese). Models do not always comply, so the reader is lenient where it is safe:
code fences and prose around the object are ignored, an answer cut short (token limit) keeps
its complete members, names given as plain strings or under other common keys are accepted.
What it never does is guess: no JSON object, or one with neither a caption nor a tag, is
unusable (`VisionOutputInvalid`), and a model that says it refuses is a refusal."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# Caption and tag limits: a caption is one or two sentences, tags are short names.
MAX_CAPTION_CHARS = 2000
MAX_TAG_CHARS = 64
MAX_TAGS_PER_CATEGORY = {"object": 15, "color": 6, "scene": 3, "mood": 3}
DEFAULT_CONFIDENCE = 0.7

LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Simplified Chinese (简体中文)",
    "zh-cn": "Simplified Chinese (简体中文)",
    "zh-hans": "Simplified Chinese (简体中文)",
    "zh-tw": "Traditional Chinese (繁體中文)",
    "zh-hant": "Traditional Chinese (繁體中文)",
    "ja": "Japanese",
    "ko": "Korean",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "ru": "Russian",
}

INSTRUCTIONS = "\n".join(
    (
        "You describe photos for a personal photo library. Look at the image and answer with one JSON object"
        " and nothing else: no prose, no code fences.",
        "The object has exactly these members, in this order:",
        '{"caption": "<one or two sentences describing the image, written in {language}>",',
        ' "objects": [{"en": "<English name>", "zh": "<简体中文名称>", "confidence": <0 to 1>}],',
        ' "colors": [{"en": "<English colour name>", "zh": "<颜色>", "confidence": <0 to 1>}],',
        ' "scene": {"en": "<English scene, e.g. beach, kitchen, street>", "zh": "<场景>", "confidence": <0 to 1>},',
        ' "mood": {"en": "<English mood, e.g. calm, festive>", "zh": "<氛围>", "confidence": <0 to 1>}}',
        "Rules: name at most 10 clearly visible objects and the 1 to 4 dominant colours; names are short"
        ' lower-case nouns (adjectives for mood), singular, without articles; "zh" is always Simplified Chinese'
        ' and "en" always English, whatever the caption language; confidence is how sure you are that the name'
        " fits; leave out what you cannot see rather than guess.",
        'If you cannot describe the image, answer {"error": "<why>"}.',
    )
)


def language_name(language: str) -> str:
    code = (language or "en").lower()
    return LANGUAGE_NAMES.get(code) or LANGUAGE_NAMES.get(code.split("-")[0]) or language


def build_prompt(custom: str, language: str) -> str:
    """The text sent with the image: the built-in instructions, or the admin's prompt in which
    "{instructions}" and "{language}" are filled in."""
    builtin = INSTRUCTIONS.replace("{language}", language_name(language))
    if not custom.strip():
        return builtin
    return custom.replace("{instructions}", builtin).replace("{language}", language_name(language))


class VisionOutputInvalid(ValueError):
    """The answer holds nothing usable (no JSON object, or one with no caption and no tag)."""


class VisionRefusal(ValueError):
    """The model answered, but to say it will not describe the image."""


@dataclass(frozen=True)
class DescribedTag:
    category: str  # "object", "color", "scene", "mood"
    names: dict[str, str]  # {"en": "cat", "zh": "猫"}; "en" always present
    confidence: float

    @property
    def label(self) -> str:
        return self.names["en"]


@dataclass(frozen=True)
class ParsedDescription:
    caption: str
    tags: list[DescribedTag] = field(default_factory=list)
    truncated: bool = False


_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(?:```|\Z)", re.S)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CATEGORY_KEYS = {
    "object": ("objects", "object", "items", "things"),
    "color": ("colors", "colours", "color", "colour"),
    "scene": ("scene", "scenes", "setting", "place"),
    "mood": ("mood", "moods", "atmosphere", "emotion"),
}


def parse_description(text: str, *, cut_short: bool = False) -> ParsedDescription:
    """The caption and tags in a model's answer. `cut_short`: the provider said the answer hit
    its token limit. Raises VisionRefusal or VisionOutputInvalid."""
    value, truncated = _json_object(text)
    truncated = truncated or cut_short
    if value is None:
        raise VisionOutputInvalid(f"the answer holds no JSON object: {_snippet(text)}")
    caption = value.get("caption") or value.get("description") or ""
    caption = " ".join(caption.split())[:MAX_CAPTION_CHARS] if isinstance(caption, str) else ""
    tags: list[DescribedTag] = []
    seen: set[tuple[str, str]] = set()
    for category, keys in _CATEGORY_KEYS.items():
        found: list[DescribedTag] = []
        for key in keys:
            if key in value:
                found.extend(_tags(value[key], category))
        for tag in found[: MAX_TAGS_PER_CATEGORY[category]]:
            if (category, tag.label) not in seen:
                seen.add((category, tag.label))
                tags.append(tag)
    if isinstance(value.get("tags"), list):  # a flat list, each maybe with its own category
        for item in value["tags"]:
            category = str(item.get("category", "object")).lower() if isinstance(item, dict) else "object"
            category = category if category in MAX_TAGS_PER_CATEGORY else "object"
            for tag in _tags(item, category):
                if (category, tag.label) not in seen:
                    seen.add((category, tag.label))
                    tags.append(tag)
    if not caption and not tags:
        why = value.get("error") or value.get("refusal")
        if isinstance(why, str) and why.strip():
            raise VisionRefusal(why.strip()[:500])
        raise VisionOutputInvalid(f"the JSON has neither a caption nor a tag: {_snippet(text)}")
    return ParsedDescription(caption=caption, tags=tags, truncated=truncated)


def _tags(raw: object, category: str) -> list[DescribedTag]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        tag = _tag(item, category)
        if tag is not None:
            out.append(tag)
    return out


def _tag(item: object, category: str) -> DescribedTag | None:
    confidence = DEFAULT_CONFIDENCE
    if isinstance(item, str):
        names = {"zh" if _CJK.search(item) else "en": item}
    elif isinstance(item, dict):
        names = {}
        for key, language in (("en", "en"), ("english", "en"), ("name", "en"), ("label", "en"), ("zh", "zh")):
            if isinstance(item.get(key), str) and item[key].strip() and language not in names:
                names[language] = item[key]
        for key in ("chinese", "zh-cn", "zh_cn", "zh-hans"):
            if isinstance(item.get(key), str) and item[key].strip() and "zh" not in names:
                names["zh"] = item[key]
        raw = item.get("confidence", item.get("score"))
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            confidence = float(raw) / 100 if 1 < raw <= 100 else float(raw)
    else:
        return None
    names = {k: " ".join(v.split())[:MAX_TAG_CHARS] for k, v in names.items() if v.strip()}
    if "en" not in names:
        return None  # the canonical name is English; a tag only in Chinese cannot be matched
    names["en"] = names["en"].lower()
    if _CJK.search(names["en"]):
        return None
    return DescribedTag(category=category, names=names, confidence=min(max(confidence, 0.0), 1.0))


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:200] + ("..." if len(flat) > 200 else ""))


def _json_object(text: str) -> tuple[dict | None, bool]:
    """The first JSON object in the text (inside a code fence if there is one) and whether it
    had to be repaired because it was cut short."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                value, _ = json.JSONDecoder().raw_decode(candidate, start)
            except json.JSONDecodeError:
                repaired = _complete_prefix(candidate[start:])
                if repaired is not None:
                    return repaired, True
            else:
                if isinstance(value, dict):
                    return value, False
            start = candidate.find("{", start + 1)
    return None, False


def _complete_prefix(text: str) -> dict | None:
    """The longest prefix of a cut-short JSON object that ends after a complete member, closed.
    A string cut in the middle is dropped, never closed: half a word is not a name."""
    stack: list[str] = []
    in_string = escaped = False
    cuts: list[tuple[int, str]] = []  # (end of prefix, closers for it)
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
            if not stack:
                break  # complete, yet raw_decode refused it: not JSON
            cuts.append((i + 1, "".join(reversed(stack))))
        elif ch == ",":
            cuts.append((i, "".join(reversed(stack))))
    for end, closers in reversed(cuts):
        try:
            value = json.loads(text[:end] + closers)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None
