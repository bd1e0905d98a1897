"""Random everyday English sentences and espeak-ng voices for the synthetic data engines (talking portrait,
dubbing): many short sentence shapes, accents and voice variants, all drawn from one numpy generator."""

from __future__ import annotations

import numpy as np

_SUBJECTS = (
    "I", "you", "we", "they", "my brother", "the old man", "our teacher", "the children", "your mother",
    "the doctor", "a stranger", "my best friend", "the captain", "everybody", "nobody", "the neighbours",
    "the baker", "my sister", "the pilot", "the team", "a young woman", "the manager", "the farmer",
)  # fmt: skip
_VERBS = (
    "saw", "found", "lost", "bought", "painted", "remembered", "opened", "carried", "watched", "forgot",
    "borrowed", "cleaned", "broke", "moved", "called", "followed", "needed", "wanted", "loved", "missed",
    "fixed", "sold", "built", "heard", "brought", "kept", "threw", "caught", "pushed", "believed",
)  # fmt: skip
_OBJECTS = (
    "the blue boat", "a small box", "the letter", "my keys", "the piano", "a bottle of milk", "the map",
    "the window", "a broken umbrella", "the red bicycle", "the old photographs", "a basket of apples",
    "the money", "the yellow door", "a pair of boots", "the whole story", "the morning paper", "the puppy",
    "the baby's blanket", "a warm jumper", "the moon", "the bridge", "the music", "a purple balloon",
    "the wooden spoon", "the phone", "the secret", "the garden gate", "the book about whales",
)  # fmt: skip
_PLACES = (
    "in the kitchen", "at the station", "by the river", "near the market", "under the bed", "in Boston",
    "on the roof", "at school", "behind the museum", "in the park", "on the beach", "at the hospital",
    "in the mountains", "at midnight", "before breakfast", "after the party", "in the summer", "yesterday",
    "last week", "this morning", "on Monday", "every evening", "in the rain", "over the bridge",
)  # fmt: skip
_ADJ = (
    "wonderful", "terrible", "strange", "beautiful", "boring", "amazing", "awful", "perfect", "quiet",
    "dangerous", "funny", "sad", "brilliant", "ridiculous", "lovely", "horrible", "peaceful", "weird",
)  # fmt: skip
_TEMPLATES = (
    "{S} {V} {O} {P}.",
    "{S} {V} {O}.",
    "Why did {s} leave {o} {p}?",
    "Did {s} really see {o} {p}?",
    "It was {A}, really {A}.",
    "I can't believe {s} {v} {o}!",
    "Please bring {o} to me.",
    "Maybe {s} {v} {o} {p}, but I'm not sure.",
    "Honestly, that was {A}.",
    "Look at {o}!",
    "{S} said it was {A}.",
    "We should go {p}.",
    "Oh no, {s} {v} {o} again.",
    "Thank you so much for {o}.",
    "The weather {p} was {A}.",
    "{S} never {v} {o}, did {s2}?",
    "Could you open the window, please?",
    "Well, I think {o} is {A}.",
    "Stop! Don't touch {o}.",
    "Hmm, {s} {v} {o} {p}, and then {s2} {v2} {o2}.",
    "Mm, maybe. Maybe not.",
    "Peter picked a peck of pickled peppers.",
    "My mum made more muffins for Bob.",
    "{S} was happy, but {s2} was angry.",
    "Hello! How are you today?",
    "Yes. No. Absolutely not!",
    "One, two, three, four, five.",
    "It's {A}, isn't it?",
    "Where is {o}?",
    "What a {A} day {p}!",
)  # fmt: skip
_PRONOUN = {"I": "I", "you": "you", "we": "we", "they": "they"}


def random_sentence(rng: np.random.Generator) -> str:
    """One English sentence from the template grammar (about 10^7 distinct sentences)."""
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731

    def subj() -> str:
        return pick(_SUBJECTS)

    s, s2 = subj(), subj()
    fill = {
        "s": s, "S": s[0].upper() + s[1:], "s2": s2, "v": pick(_VERBS), "V": pick(_VERBS), "v2": pick(_VERBS),
        "o": pick(_OBJECTS), "O": pick(_OBJECTS), "o2": pick(_OBJECTS), "p": pick(_PLACES), "P": pick(_PLACES),
        "A": pick(_ADJ),
    }  # fmt: skip
    return pick(_TEMPLATES).format(**fill)


# -------------------------------------------------------------------------------------------------- voices

ACCENTS = ("en-us", "en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan")
VARIANTS = (
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
    "klatt3", "klatt4", "Alex", "Andrea", "Annie", "Denis", "Gene", "Lee", "Mike", "Reed", "adam", "anika",
    "aunty", "belinda", "benjamin", "caleb", "david", "ed", "edward", "grandma", "grandpa", "ian", "john",
    "linda", "max", "michel", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis", "victor", "zac",
    "whisper", "whisperf",
)  # fmt: skip
