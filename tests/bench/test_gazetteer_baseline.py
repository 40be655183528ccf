"""``python -m bench.gazetteer_baseline`` on tiny gold files written here: figures as lmr.evaluation.score gives
them, overall, per script and per event, and a result file the results renderer reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from geocode.dictionary_tagger import DictionaryTagger
from lmr.environment import offline_env
from lmr.evaluation import score
from lmr.readers import read_examples
from lmr.results.render import load, render_results

REPO = Path(__file__).resolve().parents[2]
POSTS = {
    "storm_en": [
        ("Flooding across Houston tonight", ["Houston"]),
        ("Shelter open near the downtown library", ["downtown library"]),
        ("Please donate to the relief effort", []),
    ],
    "storm_ar": [
        ("أمطار غزيرة في الكويت اليوم", ["الكويت"]),
        ("شوارع غارقة #سيول_الكويت", ["الكويت"]),
    ],
}


def _write(root: Path) -> list[Path]:
    files = []
    for event, posts in POSTS.items():
        f = root / event / "dev.jsonl"
        f.parent.mkdir(parents=True)
        lines = []
        for i, (text, names) in enumerate(posts):
            ms = [{"text": n, "type": "City/town", "start_offset": text.rindex(n)} for n in names]
            for m in ms:
                m["end_offset"] = int(m["start_offset"]) + len(str(m["text"]))
            lines.append(json.dumps({"tweet_id": f"{event}-{i}", "text": text, "location_mentions": ms}))
        f.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(f)
    return files


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.gazetteer_baseline", *args],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_bench_scores_the_tagger_as_models_are_scored(tmp_path: Path) -> None:
    en, ar = _write(tmp_path)
    out = tmp_path / "results" / "gazetteer.json"
    p = _bench("--data", str(en), "--data", str(ar), "--json", "--result", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout)

    examples = read_examples([en, ar])
    tagger = DictionaryTagger.from_gazetteer()
    preds = [tagger.tag(ex.text) for ex in examples]
    want = score(examples, preds)
    for k in ("precision", "recall", "f1", "overlap_f1", "n_posts", "n_gold"):
        assert got["all"][k] == want[k], k
    assert set(got["by_script"]) == {"arabic", "latin"}
    assert set(got["by_event"]) == set(POSTS)
    arabic = [i for i, ex in enumerate(examples) if ex.event == "storm_ar"]
    assert got["by_script"]["arabic"]["f1"] == score([examples[i] for i in arabic], [preds[i] for i in arabic])["f1"]
    assert 0 < got["all"]["recall"] < 1  # the library is no place name: a miss the figures must show

    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["area"] == "recognition"
    assert result["rows"][0]["f1"] == got["all"]["f1"]
    assert [r["name"] for r in result["rows"][1:]] == [
        f"{result['rows'][0]['name']}, {s} posts" for s in ("arabic", "latin")
    ]
    page = render_results(load(out.parent))
    assert result["rows"][0]["name"] in page


def test_missing_data_is_named_with_the_fix(tmp_path: Path) -> None:
    p = _bench("--data", str(tmp_path / "nowhere.jsonl"))
    assert p.returncode != 0
    assert "nowhere.jsonl" in p.stderr and "Traceback" not in p.stderr
