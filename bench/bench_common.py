"""Shared by the bench scripts: BEIR-layout loading, nDCG, percentiles, the tiny corpus.

Pure Python and the standard library only, so it is cheap to import and to unit-test
(tests/unit/test_ndcg.py). The scripts import it as `bench_common` (their own folder
is first on sys.path when run as `python bench/x.py`); tests as `bench.bench_common`.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Documents are ranked from this many chunk hits, de-duplicated, then cut to 10.
# (A SciFact abstract is often 2 chunks; 10 chunk hits can hold fewer than 10 documents.)
NDCG_K = 10
HITS_FOR_NDCG = 20

Qrels = dict[str, dict[str, int]]  # query id -> {corpus id: relevance}


@dataclass(frozen=True, slots=True)
class BeirDoc:
    id: str
    title: str
    text: str

    def as_text(self) -> str:
        return f"{self.title}\n\n{self.text}" if self.title else self.text


# --- metrics ---------------------------------------------------------------------


def dedupe(ids: Iterable[str]) -> list[str]:
    """First occurrence of each id, order kept (chunk hits -> document ranking)."""
    return list(dict.fromkeys(ids))


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = NDCG_K) -> float:
    """nDCG@k with linear gains, as trec_eval / pytrec_eval (and so BEIR) compute it.

    `ranked` is best first and may repeat ids (only the first occurrence counts);
    `relevant` maps judged ids to relevance (<= 0 counts as not relevant)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    ideal = sorted((r for r in relevant.values() if r > 0), reverse=True)[:k]
    if not ideal:
        return 0.0
    gains = [float(max(relevant.get(doc, 0), 0)) for doc in dedupe(ranked)[:k]]
    return dcg(gains) / dcg([float(r) for r in ideal])


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), q in [0, 100]."""
    if not values:
        return float("nan")
    if not 0 <= q <= 100:
        raise ValueError("q must be within [0, 100]")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


# --- BEIR layout -----------------------------------------------------------------


def corpus_file(path: Path) -> Path:
    return path / "corpus.jsonl" if path.is_dir() else path


def beir_root(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def load_corpus(path: Path) -> list[BeirDoc]:
    docs = []
    with corpus_file(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                docs.append(BeirDoc(str(row["_id"]), row.get("title") or "", row["text"]))
    return docs


def load_queries(path: Path) -> dict[str, str]:
    queries = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
    return queries


def load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
        if rows and rows[0] and rows[0][0].strip() == "query-id":
            rows = rows[1:]
        for row in rows:
            if len(row) >= 3:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def default_qrels(root: Path) -> Path | None:
    """qrels/test.tsv if present, else qrels/train.tsv, else none."""
    for name in ("test.tsv", "train.tsv"):
        candidate = root / "qrels" / name
        if candidate.is_file():
            return candidate
    return None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def doc_filename(doc_id: str) -> str:
    return _UNSAFE.sub("_", doc_id) + ".txt"


def ids_by_filename(docs: Iterable[BeirDoc]) -> dict[str, str]:
    return {doc_filename(d.id): d.id for d in docs}


def write_docs(docs: Iterable[BeirDoc], folder: Path) -> int:
    """One `<id>.txt` (title, blank line, text) per document."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for doc in docs:
        (folder / doc_filename(doc.id)).write_text(doc.as_text(), encoding="utf-8")
        n += 1
    return n


def select_docs(docs: Sequence[BeirDoc], qrels: Qrels, limit: int | None) -> list[BeirDoc]:
    """The first `limit` documents, judged ones first so a small run still has
    queries to score; all documents when there is no limit."""
    if limit is None or limit >= len(docs):
        return list(docs)
    judged = {doc for rels in qrels.values() for doc in rels}
    first = [d for d in docs if d.id in judged]
    rest = [d for d in docs if d.id not in judged]
    return (first + rest)[:limit]


def restrict_qrels(qrels: Qrels, doc_ids: Iterable[str]) -> Qrels:
    """Judgments on the kept documents only; queries left with no relevant one dropped."""
    kept = set(doc_ids)
    out: Qrels = {}
    for qid, rels in qrels.items():
        sub = {d: r for d, r in rels.items() if d in kept}
        if any(r > 0 for r in sub.values()):
            out[qid] = sub
    return out


# --- a tiny generated corpus ----------------------------------------------------------

_TOPICS: list[tuple[str, list[str], str]] = [
    (
        "Glacier retreat",
        [
            "Alpine glaciers lost a third of their ice volume over the last century.",
            "Meltwater from retreating glaciers feeds rivers during dry summers.",
            "Satellite altimetry measures the thinning of glacier tongues each year.",
        ],
        "how fast are alpine glaciers melting",
    ),
    (
        "Sourdough fermentation",
        [
            "Wild yeast and lactic acid bacteria leaven sourdough bread.",
            "A starter is fed flour and water daily to keep the culture active.",
            "Long cold proofing deepens the sour flavour of the loaf.",
        ],
        "what makes sourdough bread rise",
    ),
    (
        "Bee navigation",
        [
            "Honeybees use the position of the sun as a compass when foraging.",
            "The waggle dance tells nest mates the direction and distance of flowers.",
            "Polarised light lets bees navigate even under a cloudy sky.",
        ],
        "honeybee waggle dance direction",
    ),
    (
        "Lithium batteries",
        [
            "Lithium ion cells store energy by moving ions between graphite and oxide.",
            "Dendrites growing across the separator can short circuit a battery.",
            "Solid electrolytes promise safer cells with higher energy density.",
        ],
        "why do lithium ion batteries short circuit",
    ),
    (
        "Volcanic eruptions",
        [
            "Magma rich in silica traps gas and erupts explosively.",
            "Basaltic lava flows are runny and erupt gently in Hawaii.",
            "Ash clouds from eruptions ground aircraft across whole continents.",
        ],
        "explosive volcano magma gas",
    ),
    (
        "Coral bleaching",
        [
            "Warm water makes corals expel the algae living in their tissue.",
            "Bleached reefs turn white and many corals starve afterwards.",
            "Marine heatwaves have bleached the Great Barrier Reef repeatedly.",
        ],
        "ocean heat coral reef bleaching",
    ),
    (
        "Roman aqueducts",
        [
            "Roman engineers built aqueducts with a gentle constant gradient.",
            "Arched bridges carried the water channels across deep valleys.",
            "The city of Rome received water from eleven aqueducts.",
        ],
        "how did roman aqueducts carry water",
    ),
    (
        "Sleep and memory",
        [
            "Deep sleep consolidates memories formed during the day.",
            "The hippocampus replays recent experiences while we sleep.",
            "Sleep deprivation impairs learning of new facts and skills.",
        ],
        "does sleep help memory consolidation",
    ),
]

_FILLER = [
    "The report was reviewed by the committee.",
    "Further measurements are planned for next season.",
    "Results were consistent across the sampled sites.",
    "Earlier studies reached similar conclusions.",
]


def generate_tiny(folder: Path, docs_per_topic: int = 4) -> Path:
    """Write a small BEIR-layout corpus (corpus.jsonl, queries.jsonl, qrels/test.tsv):
    a few topics, several documents each, one judged query per topic."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qrels").mkdir(exist_ok=True)
    corpus_rows = []
    query_rows = []
    qrel_rows = []
    for t, (title, sentences, query) in enumerate(_TOPICS):
        qid = f"q{t}"
        query_rows.append({"_id": qid, "text": query, "metadata": {}})
        for i in range(docs_per_topic):
            doc_id = f"d{t}-{i}"
            # Rotate the sentences and add filler so documents differ.
            body = sentences[i % 3 :] + sentences[: i % 3] + _FILLER[: 1 + i % len(_FILLER)]
            corpus_rows.append({"_id": doc_id, "title": f"{title} {i + 1}", "text": " ".join(body)})
            qrel_rows.append((qid, doc_id, 2 if i == 0 else 1))
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in corpus_rows)
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in query_rows)
    with (folder / "qrels" / "test.tsv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["query-id", "corpus-id", "score"])
        writer.writerows(qrel_rows)
    return folder


# --- output ------------------------------------------------------------------------


def format_table(rows: Sequence[tuple[str, str, str]], title: str) -> str:
    """A plain aligned table: figure | value | target/note."""
    head = ("figure", "value", "target / note")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [title, line]
    for row in [head, *rows]:
        cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        out.append(" " + " | ".join(cells))
        if row is head:
            out.append(line)
    out.append(line)
    return "\n".join(out)


def report(fig: Mapping[str, Any], text: str, json_path: Path | None) -> None:
    """Print the figures' table, and keep them as JSON when asked to."""
    print()
    print(text)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(fig, indent=2) + "\n")
