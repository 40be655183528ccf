"""A reproducible stream with repeated texts, built from IDRISI's unlabeled posts.

Crisis streams repeat themselves. Cooper et al. (2015), "Twitter as a potential disaster risk
reduction tool. Part II", PLoS Currents Disasters, doi:10.1371/currents.dis.f2e5b9e979af6174d2f97c1f0349be5c,
counted 27,309 retweets among the 81,441 tweets of the 2013 Hattiesburg tornado: a share of 0.335
(:data:`PUBLISHED_SHARE`, the default). IDRISI itself was de-duplicated, yet 608 of its 2,815
unlabeled posts (21.6%) still start with ``RT @``. Benchmarks also run 0.5, a busier stream.

Each post of the stream is, with probability ``share``, a repeat of a post seen earlier in the
stream (picked uniformly among the earlier posts, so popular texts get repeated more, as on
Twitter), else the next unused IDRISI post. A repeat is a retweet (``RT @userN: <text>``, 4 in 5)
or a copy with another trailing link (1 in 5). Same seed, same stream.

    python -m bench.repeats --posts 2000 --share 0.5 > stream.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import re

from bench.common import unlabeled_posts

PUBLISHED_SHARE = 27_309 / 81_441  # retweets / tweets, Hattiesburg tornado 2013 (Cooper et al. 2015)
_LINK = re.compile(r"\s*https?://\S+\s*$")


def repeated_stream(n: int, share: float = PUBLISHED_SHARE, seed: int = 7) -> list[dict[str, str]]:
    """``n`` posts (``id``, ``text``) of which about ``share`` repeat an earlier text."""
    if not 0 <= share < 1:
        raise ValueError(f"share must be in [0, 1), not {share}")
    originals = [str(p["text"]) for p in unlabeled_posts()]
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    seen: list[str] = []  # the texts without any RT prefix, one per post so far
    fresh = iter(originals)
    for i in range(n):
        text = None
        if seen and rng.random() < share:
            core = rng.choice(seen)
            if rng.random() < 0.8:
                text = f"RT @user{rng.randrange(10_000)}: {core}"
            else:
                text = _LINK.sub("", core) + f" https://t.co/{rng.randrange(16**10):010x}"
            seen.append(core)
        else:
            core = next(fresh, None) or rng.choice(originals)
            text = core
            seen.append(core)
        out.append({"id": f"r{i}", "text": text})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=2000)
    ap.add_argument("--share", type=float, default=PUBLISHED_SHARE)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    for p in repeated_stream(a.posts, a.share, a.seed):
        print(json.dumps(p, ensure_ascii=False))


if __name__ == "__main__":
    main()
