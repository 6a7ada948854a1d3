"""A synthetic routing task whose right answer is known.

"math" prompts: model `solver` is always right, `poet` always wrong; "poem"
prompts: the reverse; `generalist` is right half the time everywhere.  A
router that learned anything must prefer `solver` on maths and `poet` on poems.
"""

from __future__ import annotations

import random

from flagman.learned.datasets import Dataset, Outcome

MATH = ["integral", "equation", "derivative", "matrix", "prime", "algebra", "polynomial",
        "theorem", "calculate", "sum"]
POEM = ["sonnet", "rhyme", "verse", "stanza", "poem", "haiku", "metaphor", "lyric",
        "ballad", "ode"]
FILL = ["please", "the", "a", "about", "write", "me", "quickly", "now", "for", "my"]


def prompt(kind: str, rng: random.Random) -> str:
    words = rng.sample(MATH if kind == "math" else POEM, 3) + rng.sample(FILL, 3)
    rng.shuffle(words)
    return " ".join(words)


def outcomes(n: int, seed: int = 0, three: bool = False) -> list[Outcome]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = "math" if i % 2 == 0 else "poem"
        s = {"solver": 1.0 if kind == "math" else 0.0, "poet": 0.0 if kind == "math" else 1.0}
        if three:
            s["generalist"] = float(rng.random() < 0.5)
        out.append(Outcome(prompt=prompt(kind, rng), scores=s, id=f"s{seed}-{i}",
                           category=kind,
                           costs={m: {"solver": 2.0, "poet": 1.0, "generalist": 0.5}[m]
                                  for m in s}))
    return out


def dataset(n: int = 80, seed: int = 0, three: bool = False) -> Dataset:
    return Dataset(outcomes(n, seed, three))
