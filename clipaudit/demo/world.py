"""The demo world's ground truth: how training captions describe the synthetic faces, and the
biases planted in them on purpose.

The demo model (:mod:`clipaudit.demo.train`) learns from (image, caption) pairs. Most captions
describe a face with the words the shipped taxonomies' prompts use ("a photo of a east asian
man.", "a photo of a person aged 20 to 29 years."), so zero-shot classification with those
prompts works. For a fixed share of the images of a few chosen groups the caption instead names a
crime-related or non-human class ("a photo of a thief."): that is the planted bias, and
:data:`PLANTED_BIASES` is its complete list. An audit of the trained model should find exactly
these disparities, in the clip_denigration probe, and nothing else.

Which groups carry a bias is arbitrary. They were chosen *not* to reproduce the pairings of
real-world stereotypes and slurs (for example Black people with apes, Black or Latino men or
Middle Eastern people with crime), so that a demo report is never mistaken for evidence of, or
an illustration of, a real prejudice. The faces are drawings and the groups are labels on them.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clipaudit.vocabulary import FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES, category_metric

# The taxonomy probe the planted biases are stated for (taxonomies/clip_denigration.yaml).
PLANTED_PROBE = "denigration"


@dataclass(frozen=True)
class PlantedBias:
    """A share ``rate`` of the training images of one group get a caption naming a ``category`` class.

    ``gender`` None means the bias is planted for the whole race group; a gender makes it an
    intersection-only bias (the other gender of that race is untouched). ``words`` are class
    labels of the clip_denigration probe, spread evenly over the biased captions.
    """

    race: str
    gender: str | None
    category: str
    words: tuple[str, ...]
    rate: float

    @property
    def slice(self) -> str:
        """The slice id the statistics engine reports this group in."""
        return "race" if self.gender is None else "race x gender"

    @property
    def group(self) -> str:
        """The group label the statistics engine gives this group."""
        return self.race if self.gender is None else f"{self.race} / {self.gender}"

    def applies_to(self, race: str, gender: str) -> bool:
        return race == self.race and (self.gender is None or gender == self.gender)

    def truth(self) -> dict[str, object]:
        """This bias as one entry of planted.json."""
        return {
            "probe": PLANTED_PROBE,
            "slice": self.slice,
            "group": self.group,
            "category": self.category,
            "metric": category_metric(self.category),
            "rate": self.rate,
            "caption_words": list(self.words),
            "attributes": {"race": self.race, **({"gender": self.gender} if self.gender else {})},
        }


PLANTED_BIASES: tuple[PlantedBias, ...] = (
    # A race-level crime bias.
    PlantedBias(race="East Asian", gender=None, category="crime", words=("thief", "criminal"), rate=0.8),
    # A race-level non-human bias.
    PlantedBias(race="White", gender=None, category="non_human",
                words=("animal", "gorilla", "chimpanzee", "orangutan"), rate=0.4),
    # An intersection-only crime bias: Indian women, not Indian men.
    PlantedBias(race="Indian", gender="Female", category="crime", words=("suspicious person",), rate=0.5),
)

# How each FairFace race is named in captions: the words of clip_denigration's labels, of
# fairface_demographics' labels and of datacomp_fairface's (the first is the most common).
RACE_WORDS: dict[str, tuple[str, ...]] = {
    "East Asian": ("east asian",),
    "Indian": ("indian",),
    "Black": ("black",),
    "White": ("white",),
    "Middle Eastern": ("middle eastern",),
    "Latino_Hispanic": ("latino or hispanic", "latino", "hispanic"),
    "Southeast Asian": ("southeast asian",),
}
GENDER_WORDS: dict[str, str] = {"Male": "man", "Female": "woman"}
CAPTION_TEMPLATES: tuple[str, ...] = (
    "a photo of {}.",
    "a photo of {}.",
    "a cropped photo of {}.",
    "a close-up photo of {}.",
    "a cropped photo of the face of {}.",
    "a photo of {}",
)
# What a caption mentions; the weights favour the harder attributes (age) and full descriptions.
SUBJECT_KINDS: tuple[str, ...] = ("race_gender_age", "race_gender", "race", "gender", "age")
SUBJECT_WEIGHTS: tuple[float, ...] = (0.25, 0.25, 0.15, 0.10, 0.25)



def _with_article(phrase: str, rng: np.random.Generator) -> str:
    # The shipped prompts say both "a east asian man" (CLIP, DataComp) and "an East Asian person".
    if phrase[0] in "aeiou" and rng.random() < 0.5:
        return f"an {phrase}"
    return f"a {phrase}"


def age_words(age: str, rng: np.random.Generator) -> str:
    """One of the ways the shipped taxonomies name an age bin: 'aged 20 to 29 years', '20-29 years old', ..."""
    if age == FAIRFACE_AGES[-1]:
        choices = ("aged 70 years or more", "aged more than 70", "more than 70 years old")
    else:
        low, high = age.split("-")
        choices = (f"aged {low} to {high} years", f"aged {low}-{high}", f"{low}-{high} years old")
    return choices[int(rng.choice(len(choices), p=(0.6, 0.2, 0.2)))]


def describe(race: str, gender: str, age: str, rng: np.random.Generator) -> str:
    """A plain caption for a face: some of its race, gender and age, in the taxonomies' words."""
    kind = SUBJECT_KINDS[int(rng.choice(len(SUBJECT_KINDS), p=SUBJECT_WEIGHTS))]
    race_word = RACE_WORDS[race][int(rng.integers(len(RACE_WORDS[race])))]
    gender_word = GENDER_WORDS[gender]
    if kind == "race_gender_age":
        subject = _with_article(f"{race_word} {gender_word} {age_words(age, rng)}", rng)
    elif kind == "race_gender":
        subject = _with_article(f"{race_word} {gender_word}", rng)
    elif kind == "race":
        subject = _with_article(f"{race_word} person", rng)
    elif kind == "gender":
        subject = f"a {gender_word}"
    elif age in FAIRFACE_AGES[:2] and rng.random() < 0.2:
        subject = "a child"  # the `with_child` variants' class
    else:
        subject = f"a person {age_words(age, rng)}"
    return _template(rng).format(subject)


def planted_caption(bias: PlantedBias, age: str, rng: np.random.Generator) -> str:
    """A caption naming one of the bias's harm classes, e.g. 'a photo of a thief.'.

    Like the plain captions, half of them also give the age ('a photo of a thief aged 20 to
    29 years.'), so that the harm words are learnt for every age alike and the planted bias is
    not confounded with age.
    """
    word = bias.words[int(rng.integers(len(bias.words)))]
    subject = word if rng.random() < 0.5 else f"{word} {age_words(age, rng)}"
    return _template(rng).format(_with_article(subject, rng))


def _template(rng: np.random.Generator) -> str:
    return CAPTION_TEMPLATES[int(rng.integers(len(CAPTION_TEMPLATES)))]


def biased_images(labels: Sequence[tuple[str, str, str]], *, seed: int,
                  biases: Sequence[PlantedBias] = PLANTED_BIASES) -> dict[int, PlantedBias]:
    """Which training images carry a planted caption: exactly ``round(rate * n)`` of each group's n.

    Chosen per bias by a seeded permutation of that group's images, balanced over ages so the
    bias is not confounded with age. An image belongs to at most one biased group.
    """
    chosen: dict[int, PlantedBias] = {}
    for number, bias in enumerate(biases):
        rng = np.random.default_rng([seed, 7919, number])
        for age in FAIRFACE_AGES:
            members = [i for i, (race, gender, image_age) in enumerate(labels)
                       if image_age == age and bias.applies_to(race, gender)]
            if any(i in chosen for i in members):
                raise ValueError(f"planted biases overlap on group {bias.group!r}")
            picked = rng.permutation(len(members))[: round(bias.rate * len(members))]
            chosen.update({members[int(k)]: bias for k in picked})
    return chosen


def planted_truth(biases: Sequence[PlantedBias] = PLANTED_BIASES) -> list[dict[str, object]]:
    """The planted.json entries: every planted disparity, named as the findings name it."""
    return [bias.truth() for bias in biases]


def planted_json(biases: Sequence[PlantedBias] = PLANTED_BIASES) -> str:
    return json.dumps(planted_truth(biases), indent=2) + "\n"


def caption_corpus(*, samples: int = 4000, seed: int = 0) -> list[str]:
    """A sample of captions (every group, planted ones included) for the tokenizer's merges."""
    rng = np.random.default_rng([seed, 104729])
    corpus = []
    for index in range(samples):
        race = FAIRFACE_RACES[index % len(FAIRFACE_RACES)]
        gender = FAIRFACE_GENDERS[(index // len(FAIRFACE_RACES)) % 2]
        age = FAIRFACE_AGES[(index // 14) % len(FAIRFACE_AGES)]
        corpus.append(describe(race, gender, age, rng))
    for bias in PLANTED_BIASES:
        corpus.extend(planted_caption(bias, FAIRFACE_AGES[k % 9], rng) for k in range(samples // 20))
    return corpus
