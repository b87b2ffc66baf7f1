"""ImageNet classes -> bilingual tags, and the confidence rule that keeps junk off photos.

Each of the 1000 classes has a canonical English label (its first WordNet lemma, lower case,
disambiguated where two classes share a lemma), a Chinese name, and broader tags from a curated
table (tabby cat -> cat -> mammal -> animal). A class's probability also counts towards each of
its broader tags, so a photo that the classifier splits between three cat breeds is confidently
a "cat" even when no single breed is (as long as one class under it leads with
`min_leading_class`: a broader tag made of hundreds of crumbs is noise).

The rule (thresholds measured on scikit-image's photos, see README "Tagging"): a tag is kept
when its probability (summed over the classes under it) reaches `min_confidence`. Classes
flagged "texture" in the table (maze, honeycomb, nematode, bubble, ...) are what the classifier
answers for surfaces, documents and noise; they need `texture_confidence` and never count
towards broader tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np

# Defaults (README "Tagging" has the measurements behind them).
MIN_CONFIDENCE = 0.5
TEXTURE_CONFIDENCE = 0.9
# A broader tag also needs one class under it this likely: "animal" summed over 398 classes
# reaches 0.49 on a photo of grass from hundreds of tiny shares, never from one class.
MIN_LEADING_CLASS = 0.2


@dataclass(frozen=True)
class TagName:
    """A tag as the catalog records it: canonical English label, names by language, category."""

    label: str
    names: dict[str, str]
    category: str


@dataclass(frozen=True)
class ScoredTag:
    tag: TagName
    confidence: float


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wordnet_id: str
    lemmas: tuple[str, ...]
    tag: TagName
    broader: tuple[str, ...]  # keys of every broader tag, nearest first, parents included
    texture: bool


@dataclass
class Vocabulary:
    classes: list[ImageNetClass]
    broader: dict[str, TagName]
    # (number of classes) x (number of broader tags): 1 where the class rolls up into the tag.
    _membership: np.ndarray = field(repr=False)
    _broader_keys: list[str] = field(repr=False)

    def tags(
        self,
        probabilities: np.ndarray,
        *,
        min_confidence: float = MIN_CONFIDENCE,
        texture_confidence: float = TEXTURE_CONFIDENCE,
        min_leading_class: float = MIN_LEADING_CLASS,
        max_tags: int = 20,
    ) -> list[ScoredTag]:
        """The tags for one image's class probabilities (softmax over the 1000 logits), most
        confident first; the same label never twice."""
        best: dict[str, ScoredTag] = {}

        def keep(tag: TagName, confidence: float) -> None:
            if tag.label not in best or best[tag.label].confidence < confidence:
                best[tag.label] = ScoredTag(tag, confidence)

        for index in np.flatnonzero(probabilities >= min(min_confidence, texture_confidence)):
            cls = self.classes[index]
            if probabilities[index] >= (texture_confidence if cls.texture else min_confidence):
                keep(cls.tag, float(probabilities[index]))
        counted = np.where(self._texture_mask, 0.0, probabilities)
        masses = counted @ self._membership
        leading = (counted[:, None] * self._membership).max(axis=0)
        for key, mass, lead in zip(self._broader_keys, masses, leading, strict=True):
            if mass >= min_confidence and lead >= min_leading_class:
                keep(self.broader[key], float(min(mass, 1.0)))
        ranked = sorted(best.values(), key=lambda t: (-t.confidence, t.tag.label))
        return ranked[:max_tags]

    @property
    def _texture_mask(self) -> np.ndarray:
        return np.array([c.texture for c in self.classes])


def _rows(name: str) -> list[list[str]]:
    text = resources.files("imgtag_inference.domain.data").joinpath(name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return (
        [line.split("\t") for line in lines[1:]]
        if name != "imagenet_classes.tsv"
        else [line.split("\t") for line in lines]
    )


@cache
def imagenet_vocabulary() -> Vocabulary:
    """The vocabulary from the package's data files (loaded once)."""
    broad_rows = _rows("broad_tags.tsv")
    broader = {k: TagName(label=en, names={"en": en, "zh": zh}, category=cat) for k, en, zh, cat, _ in broad_rows}
    parents = {row[0]: [p for p in row[4].split(",") if p] for row in broad_rows}

    def closure(keys: list[str]) -> tuple[str, ...]:
        out: list[str] = []
        queue = list(keys)
        while queue:
            key = queue.pop(0)
            if key not in broader:
                raise ValueError(f"unknown broader tag {key!r}")
            if key not in out:
                out.append(key)
                queue.extend(parents[key])
        return tuple(out)

    lemmas = {
        int(i): (wnid, tuple(x.strip() for x in names.split(","))) for i, wnid, names in _rows("imagenet_classes.tsv")
    }
    classes = []
    for index, en, zh, broad, flags in _rows("imagenet_tags.tsv"):
        keys = closure([k for k in broad.split(",") if k])
        category = broader[keys[0]].category if keys else "object"
        wnid, names = lemmas[int(index)]
        classes.append(
            ImageNetClass(
                index=int(index),
                wordnet_id=wnid,
                lemmas=names,
                tag=TagName(label=en, names={"en": en, "zh": zh}, category=category),
                broader=keys,
                texture="texture" in flags.split(","),
            )
        )
    if [c.index for c in classes] != list(range(1000)):
        raise ValueError("imagenet_tags.tsv must list the 1000 classes in order")
    keys = list(broader)
    membership = np.zeros((len(classes), len(keys)), dtype=np.float32)
    for cls in classes:
        for key in cls.broader:
            membership[cls.index, keys.index(key)] = 1.0
    return Vocabulary(classes=classes, broader=broader, _membership=membership, _broader_keys=keys)
