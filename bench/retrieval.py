"""Retrieval benchmark over the policy corpus and the laws, against baselines built in the same run.

    python bench/retrieval.py [--queries FILE] [--corpus FILE] [--laws DIR] [--json]

Builds (incrementally, cached in bench/.cache) an index with the project's own
ingest, then measures the project's hybrid retriever, BM25 alone over the same
chunks, and a plain langchain_chroma.Chroma over the same chunks and model.
Also reports the colloquial questions of bench/data/colloquial*.jsonl (residents'
words, over the laws and the notices), how the relevance threshold treats off-topic
questions, and the fusion's figures cross-validated (bench/fusion.py: the fusion
chosen on the other folds, next to the shipped setting in-sample).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (CACHE, ROOT, corpus_arguments, loose, need_shared, peak_rss_mb, percentile,  # noqa: E402
                          read_jsonl)


def write_policy_docs(corpus: Path, folder: Path, form: str = "txt") -> None:
    """One file per notice, as a district would upload it.

    txt (the default): plain text, the notice's first phrase (before the first space,
    the corpus's title) on the first line and one paragraph a line; the loader reads
    the title from that line. md: markdown with the title in front matter (for comparison).
    """
    folder.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for row in read_jsonl(corpus):
        text = row["text"].strip()
        if form == "txt":
            content = "\n".join(part for part in text.split() if part) + "\n"
        else:
            head, _, rest = text.partition(" ")
            title = head if 4 <= len(head) <= 60 and rest else ""
            body = rest if title else text
            content = f"---\ntitle: {title}\n---\n{body}\n" if title else text + "\n"
        path = folder / f"{row['doc_id']}.{form}"
        wanted.add(path.name)
        if not path.exists() or path.read_text("utf-8") != content:
            path.write_text(content, "utf-8")
    for stale in [*folder.glob("*.md"), *folder.glob("*.txt")]:
        if stale.name not in wanted:
            stale.unlink()


def corpus_work(corpus: Path, laws: Path, chunk_chars: int, overlap: int, form: str = "txt") -> Path:
    """The cached folder of the corpus index (bench/.cache/retrieval-*), its notices written as `form`."""
    key = f"{corpus.resolve()}|{laws.resolve()}|{chunk_chars}|{overlap}" + ("" if form == "md" else f"|{form}")
    work = CACHE / f"retrieval-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    write_policy_docs(corpus, work / "docs" / "policy", form)
    laws_link = work / "docs" / "laws"
    if not laws_link.is_symlink():
        laws_link.symlink_to(laws.resolve(), target_is_directory=True)
    return work


def make_config(folder: Path, index_dir: Path, chunk_chars: int, overlap: int) -> Path:
    config = folder / "config.toml"
    config.write_text(
        f'[knowledge]\ndocs_dir = "docs"\nindex_dir = "{index_dir}"\nchunk_chars = {chunk_chars}\n'
        f"chunk_overlap = {overlap}\nmin_relevance = 0.0\ntop_k = 10\n"
        '[embedding]\nthreads = 2\n',
        "utf-8",
    )
    return config


def doc_key(source: str, law_ids: dict[str, str]) -> str:
    name = Path(source).name
    return law_ids.get(name) or Path(source).stem



def law_doc_ids(laws: Path) -> dict[str, str]:
    """File name -> doc_id of each law (laws_index.jsonl beside the laws folder), {} without an index."""
    index_file = laws.parent / "laws_index.jsonl"
    if not index_file.exists():
        return {}
    return {Path(r["file"]).name: r["doc_id"] for r in read_jsonl(index_file)}


def evaluate(questions: list[dict], ranker, law_ids: dict[str, str]) -> dict:
    r1 = r5 = r10 = mrr = ans5 = 0.0
    latencies = []
    for q in questions:
        start = time.perf_counter()
        hits = ranker(q["question"])
        latencies.append((time.perf_counter() - start) * 1000)
        gold = q["doc_id"]
        rank = None
        for i, hit in enumerate(hits[:10]):
            docs = {doc_key(hit["source"], law_ids)} | {doc_key(s, law_ids) for s in hit.get("also", ())}
            if gold in docs:
                rank = i + 1
                break
        if rank:
            r1 += rank <= 1
            r5 += rank <= 5
            r10 += rank <= 10
            mrr += 1.0 / rank
        answer = q.get("answer") or ""
        # ignoring whitespace: a gold answer that spans two paragraphs holds a space where the text breaks the line
        ans5 += bool(answer) and any(loose(answer) in loose(h["text"]) for h in hits[:5])
    n = max(len(questions), 1)
    return {
        "doc_R@1": round(r1 / n, 4), "doc_R@5": round(r5 / n, 4), "doc_R@10": round(r10 / n, 4),
        "MRR@10": round(mrr / n, 4), "answer_hit@5": round(ans5 / n, 4),
        "p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
    }


def main() -> int:
    need_shared()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus_arguments(parser)
    parser.add_argument("--colloquial", type=Path, default=None,
                        help="colloquial questions (default: every bench/data/colloquial*.jsonl)")
    parser.add_argument("--folds", type=int, default=5, help="folds of the cross-validated figures")
    parser.add_argument("--offtopic", type=Path, default=ROOT / "bench/data/offtopic.jsonl")
    parser.add_argument("--form", choices=("txt", "md"), default="txt",
                        help="notices as plain text with the title on the first line (as the corpus gives them), "
                             "or as markdown with a front-matter title")
    parser.add_argument("--chunk-chars", type=int, default=420)
    parser.add_argument("--overlap", type=int, default=60)
    parser.add_argument("--dense-weight", type=float, default=None,
                        help="a fixed dense weight instead of the adaptive one (for comparison)")
    parser.add_argument("--min-relevance", type=float, default=None, help="override knowledge.min_relevance")
    parser.add_argument("--no-baselines", action="store_true", help="measure the project's retriever only")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object with every figure")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    from bench.fusion import colloquial_questions, print_report as print_fusion, report as fusion_report
    from bot.app import build_knowledge
    from bot.settings import load_settings

    project = load_settings(ROOT / "config.toml").knowledge
    weight = args.dense_weight
    threshold = project.min_relevance if args.min_relevance is None else args.min_relevance

    work = corpus_work(args.corpus, args.laws, args.chunk_chars, args.overlap, args.form)
    config = make_config(work, work / "index", args.chunk_chars, args.overlap)
    settings = load_settings(config)
    kb = build_knowledge(settings)
    start = time.perf_counter()
    report = kb.ingest([Path("docs/policy"), Path("docs/laws")], progress=sys.stderr.isatty())
    build_s = time.perf_counter() - start
    print(f"index: {report.summary()}; {report.chunks} chunks, {report.embedded} embedded in {build_s:.1f}s",
          file=sys.stderr)

    law_ids = law_doc_ids(args.laws)

    retriever = kb.retriever
    retriever.params.min_relevance = -1.0
    retriever.params.dense_weight = weight
    snap = kb.index.snapshot()

    def ranker(mode: str):
        def run(query: str):
            retriever.params.mode = mode
            return [dict(source=snap.entries[s.row]["source"], also=snap.entries[s.row].get("also", []),
                         text=snap.entries[s.row]["text"]) for s in retriever.score(query, snap, 10)]
        return run

    questions = read_jsonl(args.queries)
    ranker("hybrid")("预热")  # load the model and jieba before timing
    torch.set_num_threads(1)  # after loading: queries run as in the service, one thread per pass
    results = {"project": evaluate(questions, ranker("hybrid"), law_ids)}
    colloquial = read_jsonl(args.colloquial) if args.colloquial else colloquial_questions()
    if colloquial:
        results["project_colloquial"] = evaluate(colloquial, ranker("hybrid"), law_ids)
    if not args.no_baselines:
        results["bm25"] = evaluate(questions, ranker("bm25"), law_ids)
        results["bm25_colloquial"] = evaluate(colloquial, ranker("bm25"), law_ids) if colloquial else {}
        lc = langchain_dense(kb, snap, work)
        results["dense_langchain"] = evaluate(questions, lc, law_ids)
        results["dense_langchain_colloquial"] = evaluate(colloquial, lc, law_ids) if colloquial else {}
    retriever.params.mode = "hybrid"

    # The relevance threshold: off-topic questions must get nothing, real ones must keep their hits.
    retriever.params.min_relevance = threshold
    offtopic = read_jsonl(args.offtopic) if args.offtopic.exists() else []
    rejected = sum(1 for q in offtopic if not retriever.search(q["question"], 5))
    kept = sum(1 for q in questions if retriever.search(q["question"], 5))
    kept_c = sum(1 for q in colloquial if retriever.search(q["question"], 5))
    threshold_figures = {
        "min_relevance": threshold,
        "offtopic_rejected": round(rejected / max(len(offtopic), 1), 4),
        "dev_answered": round(kept / max(len(questions), 1), 4),
        "colloquial_answered": round(kept_c / max(len(colloquial), 1), 4),
    }
    ingest_rate, rerun_ratio = measure_ingest_rate(args, work)

    figures = dict(results["project"])
    figures.update(ingest_chunks_per_s=ingest_rate, rerun_unchanged_ratio=rerun_ratio, peak_rss_mb=round(peak_rss_mb(), 1), n=len(questions),
                   chunks=report.chunks, dense_weight=weight if weight is not None else "adaptive")
    for name, values in results.items():
        if name != "project":
            figures[name] = values
    figures["threshold"] = threshold_figures
    retriever.params.min_relevance = -1.0
    figures["cv"] = fusion_report(kb, law_ids, questions, colloquial, args.folds)
    print_table(results, threshold_figures, figures)
    print()
    print_fusion(figures["cv"])
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    return 0


def langchain_dense(kb, snap, work: Path):
    """Dense alone as a plain langchain_chroma.Chroma with the same model would give (HNSW search)."""
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_core.embeddings import Embeddings

    from bot.retrieval.ingest import indexed_text

    known = {indexed_text(e): v for e, v in zip(snap.entries, snap.vectors)}
    model = getattr(kb.embedder, "real", kb.embedder)  # not the service's memo: every query pays its forward pass

    class SameModel(Embeddings):
        # Vectors of the chunks are the model's own, already computed by ingest: reuse them.
        def embed_documents(self, texts):
            return [known[t].tolist() if t in known else model.embed([t])[0].tolist() for t in texts]

        def embed_query(self, text):
            return model.embed([text])[0].tolist()

    folder = work / "langchain-chroma"
    marker = folder / f"gen-{snap.generation}"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
    store = Chroma(collection_name="baseline", embedding_function=SameModel(), persist_directory=str(folder),
                   client_settings=ChromaSettings(anonymized_telemetry=False, is_persistent=True,
                                                  persist_directory=str(folder)))
    if not marker.exists():
        texts = [indexed_text(e) for e in snap.entries]
        metas = [{"row": i} for i in range(len(snap.entries))]
        for start in range(0, len(texts), 2000):
            store.add_texts(texts[start:start + 2000], metadatas=metas[start:start + 2000])
        marker.mkdir(parents=True)

    def run(query: str):
        docs = store.similarity_search(query, k=10)
        return [dict(source=snap.entries[d.metadata["row"]]["source"], also=snap.entries[d.metadata["row"]].get("also", []),
                     text=snap.entries[d.metadata["row"]]["text"]) for d in docs]
    return run


def measure_ingest_rate(args, work: Path) -> float:
    """Chunks/s of a fresh ingest of a corpus slice, and the time of a rerun over it as a share of the first."""
    from bot.app import build_knowledge
    from bot.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        docs = tmp / "docs"
        docs.mkdir()
        for path in sorted((work / "docs" / "policy").glob(f"*.{args.form}"))[:60]:
            shutil.copy(path, docs / path.name)
        kb = build_knowledge(load_settings(make_config(tmp, tmp / "index", args.chunk_chars, args.overlap)))
        kb.embedder.embed(["预热"])
        start = time.perf_counter()
        report = kb.ingest(progress=False)
        first = time.perf_counter() - start
        start = time.perf_counter()
        again = kb.ingest(progress=False)
        rerun = time.perf_counter() - start
        assert again.embedded == 0, "a rerun over unchanged files embedded something"
        return round(report.chunks / first, 1), round(rerun / first, 4)


def print_table(results: dict, threshold: dict, figures: dict) -> None:
    keys = ["doc_R@1", "doc_R@5", "doc_R@10", "MRR@10", "answer_hit@5", "p50_ms", "p95_ms"]
    print(f"{'retriever':28s}" + "".join(f"{k:>13s}" for k in keys))
    for name, values in results.items():
        if values:
            print(f"{name:28s}" + "".join(f"{values.get(k, float('nan')):>13.3f}" for k in keys))
    print(f"threshold {threshold['min_relevance']}: off-topic rejected {threshold['offtopic_rejected']:.3f}, "
          f"dev answered {threshold['dev_answered']:.3f}, colloquial answered {threshold['colloquial_answered']:.3f}")
    print(f"ingest {figures['ingest_chunks_per_s']} chunks/s, rerun on unchanged files "
          f"{figures['rerun_unchanged_ratio']:.2%} of the first run, peak RSS {figures['peak_rss_mb']} MB, "
          f"{figures['chunks']} chunks, {figures['n']} questions")


if __name__ == "__main__":
    sys.exit(main())
