"""opsctl kb: the specialty-disease knowledge base (专科专病知识库) and its hybrid search."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from knowledge_base.services import evaluation, kb, tuning
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, emit_json, info, render
from opsctl.cli.progress import progress
from opsctl.cli.state import container, operator

app = typer.Typer(help="知识库：导入文档、列表、混合检索与效果评测。\n\n示例：opsctl kb search \"降压药吃了头晕还能停吗\"",
                  no_args_is_help=True)

DOC_COLUMNS = [("title", "标题"), ("specialty", "专科"), ("doc_type", "类型"), ("owner", "负责人"),
               ("review_by", "复核期限"), ("stale", "待复核"), ("passages", "段落数"), ("source", "来源"),
               ("public_id", "文档编号")]
HIT_COLUMNS = [("rank", "名次"), ("passage", "段落"), ("document", "文档"), ("specialty", "专科"),
               ("why", "匹配原因"), ("stale", "待复核")]


@app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="文件或目录（.md .txt .docx .xlsx）")],
    specialty: Annotated[str | None, typer.Option(help="专科（文件自带元数据时以文件为准）")] = None,
    doc_type: Annotated[str | None, typer.Option("--type", help="类型：faq、guide、education、policy、other")] = None,
    source: Annotated[str | None, typer.Option(help="来源，如 心内科诊疗常规2025版")] = None,
    owner: Annotated[str | None, typer.Option(help="内容负责人")] = None,
    review_by: Annotated[datetime | None, typer.Option("--review-by", formats=["%Y-%m-%d"], help="复核期限")] = None,
    force: Annotated[bool, typer.Option("--force", help="即使文件未变化也重新导入")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """导入文档：未变化的文件按校验和跳过，新段落写入向量与 BM25 索引。

    示例：opsctl kb ingest docs/kb/ --specialty 心血管内科 --owner 王芳 --review-by 2027-06-30
    """
    c = container()
    defaults = kb.MetaDefaults(specialty, doc_type, source, owner, review_by.date() if review_by else None)
    with progress("编码段落") as advance:
        report = kb.ingest(c.uow(), operator(), c.kb_index, paths, defaults, force=force, progress=advance)
    render([report], [("added", "新增"), ("updated", "更新"), ("unchanged", "未变化"), ("passages", "写入段落"),
                      ("embedded", "新编码"), ("index_size", "索引段落数")], choose(fmt, as_json), title="导入结果")


@app.command("list")
def list_(
    specialty: Annotated[str | None, typer.Option(help="只看某个专科")] = None,
    stale: Annotated[bool, typer.Option("--stale", help="只看已过复核期限的文档")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出知识库文档，过了复核期限的标为待复核。

    示例：opsctl kb list --specialty 内分泌科 --stale
    """
    docs = kb.list_documents(container().uow(), operator(), specialty, stale)
    render(docs, DOC_COLUMNS, choose(fmt, as_json), title="知识库文档")


def _why(hit: kb.SearchHit) -> str:
    w = hit.why
    parts = []
    if w.matched_terms:
        parts.append("词：" + "、".join(w.matched_terms[:6]))
    if w.bm25_rank:
        parts.append(f"BM25 第{w.bm25_rank}")
    if w.dense_rank:
        parts.append(f"语义 第{w.dense_rank}（相似度 {w.cosine:.2f}）")
    return "；".join(parts)


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="患者的问题或关键词")],
    specialty: Annotated[str | None, typer.Option(help="只在某个专科内检索")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="返回条数")] = 5,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """混合检索（BM25 + 语义向量，加权倒数排名融合），给出段落、所属文档和匹配原因。

    示例：opsctl kb search "降压药吃了头晕还能停吗" --specialty 心血管内科 --k 3
    """
    c = container()
    hits = kb.search(c.uow(), operator(), c.kb_index, query, k=k, specialty=specialty, weights=c.search_weights,
                     rrf_k=c.settings.search.rrf_k)
    out = choose(fmt, as_json)
    if out is Format.json:
        emit_json([dataclasses.asdict(h) for h in hits])
        return
    render([{**dataclasses.asdict(h), "why": _why(h)} for h in hits], HIT_COLUMNS, out, title="检索结果",
           empty="（没有找到相关段落）")


@app.command("reindex")
def reindex() -> None:
    """按数据库中的段落重建索引文件（只编码缺少向量的段落）。

    示例：opsctl kb reindex
    """
    c = container()
    with progress("编码段落") as advance:
        r = kb.sync_index(c.uow(), c.kb_index, advance)
    info(f"索引共 {r.total} 段，新编码 {r.embedded} 段，移除 {r.removed} 段")


@app.command("eval")
def eval_(
    directory: Annotated[Path, typer.Argument(help="BEIR 目录：corpus.jsonl、queries.jsonl、qrels.tsv")],
    max_queries: Annotated[int | None, typer.Option("--max-queries", min=1, help="随机抽取的查询数（固定种子）")] = None,
    max_corpus: Annotated[int | None, typer.Option("--max-corpus", min=1, help="语料上限：保留被标注的文档，其余随机补足")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """在临时索引中评测 BM25、语义向量与混合检索：nDCG@10、MRR@10、recall@1/5/10。

    示例：opsctl kb eval ../shared/eval/kuake_qqr_dev_q2q --json
    """
    c = container()
    data = evaluation.load_beir(directory, max_queries, max_corpus)
    info(f"评测集：{len(data.queries)} 个查询，{len(data.corpus)} 篇文档")
    with progress("编码语料", total=len(data.corpus)) as advance:
        result = evaluation.evaluate(data, c.embedder, c.search_weights, advance, k=c.settings.search.rrf_k,
                                     candidates=c.settings.search.dense_candidates)
    out = choose(fmt, as_json)
    if out is Format.json:
        emit_json(result)
        return
    rows = [{"method": name, **result[name]} for name in ("bm25", "dense", "hybrid")]
    render(rows, [("method", "方法"), *[(m, m) for m in evaluation.METRICS]], out,
           title=f"检索评测（{result['queries']} 个查询，{result['corpus']} 篇文档）")


model_app = typer.Typer(help="向量模型：列出模型缓存、用医院自己的问题对做领域调优。\n\n示例：opsctl kb model list",
                        no_args_is_help=True)
app.add_typer(model_app, name="model")

_PHASES = {"before": "评测基础模型（留出部分）", "train": "调优训练", "after": "评测调优后模型（留出部分）"}


@model_app.command("list")
def model_list(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出模型缓存中的向量模型，标出当前配置使用的模型和调优模型的来源。

    示例：opsctl kb model list --json
    """
    c = container()
    render(tuning.list_models(c.settings.search.embedding_model),
           [("name", "模型"), ("in_use", "当前使用"), ("base_model", "基础模型"), ("tuned_on", "调优数据"),
            ("held_out_ndcg", "留出 nDCG@10 前→后"), ("path", "路径")], choose(fmt, as_json), title="向量模型",
           empty="（模型缓存为空：运行 make setup）")


@model_app.command("tune")
def model_tune(
    pairs: Annotated[Path, typer.Option("--pairs", exists=True, dir_okay=False,
                                        help="问题对文件：CHIP-STS 格式 JSON（text1,text2,label）、JSONL 或 CSV（表头 text1,text2,label）")],
    out: Annotated[str | None, typer.Option("--out", help="新模型名（写入模型缓存；默认 <基础模型>-tuned-<文件名>）")] = None,
    base: Annotated[str | None, typer.Option("--base", help="基础模型（默认为配置 search.embedding_model）")] = None,
    held_out: Annotated[float, typer.Option("--held-out", min=0.05, max=0.5, help="按问题组留出用于前后对比的比例")] = 0.2,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=1, help="最多用多少个正例问题对训练（CPU 时间）")] = None,
    max_eval_queries: Annotated[int | None, typer.Option("--max-eval-queries", min=1, help="留出评测最多用多少个查询")] = None,
    max_eval_corpus: Annotated[int | None, typer.Option("--max-eval-corpus", min=1, help="留出评测的语料上限（保留与查询配对的问题，含困难负例，其余随机补足）")] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=10)] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2, max=256)] = 32,
    learning_rate: Annotated[float, typer.Option("--lr")] = 2e-5,
    train_embeddings: Annotated[bool, typer.Option("--train-embeddings", help="连词向量矩阵一起训练（慢，默认冻结）")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 6,
    force: Annotated[bool, typer.Option("--force", help="覆盖同名的调优模型")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """用问题对做领域调优（sentence-transformers 训练器，MultipleNegativesRankingLoss，label=0 作困难负例）。

    调优前先按问题组留出一部分，调优前后用同一套评测代码打分。新模型写入模型缓存，
    不会替换默认模型；在配置中设置 search.embedding_model 为新模型名即可使用（更换模型后运行 opsctl kb reindex）。
    注意：用 CBLUE 等仅限科研的数据调优得到的模型只能用于研究，不能作为产品默认模型。

    示例：opsctl kb model tune --pairs faq_pairs.csv --out e5-cardio --max-pairs 2000
    """
    c = container()
    options = tuning.TuneOptions(held_out=held_out, seed=seed, max_pairs=max_pairs, max_eval_queries=max_eval_queries,
                                 max_eval_corpus=max_eval_corpus, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                 freeze_embeddings=not train_embeddings, weights=c.search_weights,
                                 rrf_k=c.settings.search.rrf_k)
    base_model = base or c.settings.search.embedding_model
    parsed = tuning.read_pairs(pairs)
    name = out or tuning.default_name(base_model, pairs.name)
    info(f"问题对 {len(parsed)} 条；基础模型 {base_model}；输出 {name}")
    with progress("调优") as advance:
        report = tuning.tune_model(parsed, base_model, name, options, source=str(pairs), force=force,
                                   progress=lambda phase, n: advance(n, description=_PHASES[phase]))
    result = choose(fmt, as_json)
    if result is Format.json:
        emit_json(dataclasses.asdict(report))
        return
    rows = [{"stage": stage, **{m: getattr(report, stage)[method][m] for m in evaluation.METRICS}, "method": method}
            for stage in ("before", "after") for method in ("dense", "hybrid")]
    render(rows, [("stage", "阶段"), ("method", "方法"), *[(m, m) for m in evaluation.METRICS]], result,
           title=(f"留出 {report.held_out_queries} 个查询 / {report.held_out_corpus} 条问题；训练 "
                  f"{report.trained_triples} 组（{report.with_hard_negative} 组有困难负例），{report.train_seconds} 秒"))
    info(f"已写入 {report.path}；使用：在 opsctl.toml 的 [search] 中设置 embedding_model = \"{report.model}\"，"
         "然后运行 opsctl kb reindex")
