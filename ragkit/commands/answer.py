"""`ragkit ask`, `ragkit validate`, `ragkit plan`, `ragkit schema`, `ragkit usage`.

Exit codes (docs/reliability.md): 0 done; 1 an error stopped the command (configuration, the index, a provider,
I/O), one ``error:`` line on stderr; for ``validate``, 1 means the file has problems, each listed with its line;
2 the command line is wrong (``--filter`` that is not a JSON filter, ``--usage-jsonl`` in a missing folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ragkit.commands.retrieval import json_filter


def question_text(text: str) -> str:
    """An argparse type: a question with something in it."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the question is empty")
    return text


def jsonl_target(text: str) -> str:
    """An argparse type: a file that lines can be appended to (its folder exists; it is not a folder)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; name a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {path.parent} does not exist")
    return text


def add_parsers(sub) -> None:
    p = sub.add_parser("ask", help="answer a question from the index, streaming, with sources")
    p.add_argument("question", type=question_text)
    p.add_argument("--config", help="pipeline YAML (default: embedded defaults + bundled local model)")
    p.add_argument("--generator", help="use this configured generator instead of the default/router")
    p.add_argument("--filter", type=json_filter, help='JSON payload filter, e.g. \'{"price": {"lte": 2000}}\'')
    p.add_argument(
        "--usage-jsonl", type=jsonl_target, metavar="FILE", help="append this request's usage as one JSON line to FILE"
    )
    p.add_argument("--no-stream", action="store_true", help="print the answer when complete")
    p.add_argument("--json", action="store_true", help="print answer, sources and usage as JSON")
    p.set_defaults(func=run_ask)

    p = sub.add_parser("validate", help="check a pipeline YAML; report every problem with its path and line")
    p.add_argument("file")
    p.set_defaults(func=run_validate)

    p = sub.add_parser("plan", help="print the resolved pipeline, token budget split and routing table")
    p.add_argument("file", nargs="?")
    p.add_argument("--question", default="What does the product cost?", help="question to size the budget with")
    p.set_defaults(func=run_plan)

    p = sub.add_parser("schema", help="print the JSON Schema of pipeline files (for editors)")
    p.set_defaults(func=run_schema)

    p = sub.add_parser("usage", help="summarise a usage ledger written with --usage-jsonl or ledger.jsonl_path")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_usage)


def _usage_line(reply) -> str:
    report = reply.metadata.get("usage_report")
    u = reply.usage
    parts = [
        f"model {reply.model or reply.metadata.get('generator', '?')}",
        f"tokens in {u.input_tokens} out {u.output_tokens} cached {u.cached_tokens}",
    ]
    if report is not None:
        parts.append(f"{report.latency_ms:.0f} ms")
        parts.append(f"cost ${report.cost_usd:.6f}" if not report.unpriced_models else "cost unknown (unpriced model)")
        if report.compression_tokens_before:
            parts.append(f"compression saved {report.compression_tokens_saved} tokens")
    route = reply.metadata.get("route")
    if route is not None:
        parts.append(f"route {route.get('route')} → {route.get('generator')}")
        if route.get("fell_back"):
            parts.append(route.get("summary", "fell back"))
    return " · ".join(parts)


async def print_stream(deltas):
    """Write streamed text to stdout as it comes; return the final Reply (``ProviderError`` if none came)."""
    from ragkit.errors import ProviderError

    final = None
    try:
        async for delta in deltas:
            if delta.text:
                sys.stdout.write(delta.text)
                sys.stdout.flush()
            if delta.reply is not None:
                final = delta.reply
    finally:
        print()  # the partial answer ends its line before any error is printed
    if final is None:
        raise ProviderError("the answer stream ended without its final reply")
    return final


def _print_sources(reply) -> None:
    if not reply.sources:
        return
    print("\nSources:")
    for i, hit in enumerate(reply.sources, 1):
        title = hit.chunk.metadata.get("title") or hit.chunk.doc_id
        print(f"  [{i}] {title} ({hit.chunk.doc_id})")


def _print_checks(reply) -> None:
    """Unsupported claims, sentences strict grounding removed, and an answer withdrawn for low confidence."""
    from ragkit.answer.abstention import NOT_ANSWERED

    grounding = reply.metadata.get("grounding")
    abstention = reply.metadata.get("abstention")
    lines = []
    if grounding is not None:
        lines += [f"  - unsupported: {claim}" for claim in grounding.unsupported]
        lines += [f"  - removed: {sentence}" for sentence in grounding.removed]
        lines += [f"  - note: {note}" for note in grounding.miscited]
    if abstention is not None and abstention.reason is not None:
        if abstention.before_generation:
            lines.append(f"  - {NOT_ANSWERED} ({abstention.reason})")
        else:
            lines.append(f"  - withdrawn ({abstention.reason}): {abstention.original_text}")
    if lines:
        print("\nGrounding:")
        print("\n".join(lines))


def _checks_data(reply) -> dict:
    return {key: reply.metadata[key].to_dict() for key in ("grounding", "abstention") if key in reply.metadata}


def run_ask(args) -> int:
    from dataclasses import replace

    from ragkit.config import load_pipeline
    from ragkit.pipeline import RAG

    config = load_pipeline(args.config)
    if args.usage_jsonl:
        ledger = config.ledger.model_copy(update={"jsonl_path": args.usage_jsonl})
        config = replace(config, settings={**config.settings, "ledger": ledger})
    rag = RAG(config)
    flt = args.filter
    if args.json or args.no_stream:
        reply = rag.ask(args.question, filter=flt, generator=args.generator)
        if args.json:
            report = reply.metadata.get("usage_report")
            print(
                json.dumps(
                    {
                        "answer": reply.text,
                        "sources": [
                            {"n": i, "chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id}
                            for i, h in enumerate(reply.sources, 1)
                        ],
                        "usage": report.to_dict() if report is not None else None,
                        **_checks_data(reply),
                    },
                    ensure_ascii=False,
                    default=str,
                )
            )
            return 0
        print(reply.text)
    else:
        from ragkit._aio import run_sync

        reply = run_sync(print_stream(rag.astream(args.question, filter=flt, generator=args.generator)))
    _print_sources(reply)
    _print_checks(reply)
    print(_usage_line(reply), file=sys.stderr)
    return 0


def run_validate(args) -> int:
    from ragkit.config import ConfigValidationError, load_pipeline

    try:
        config = load_pipeline(args.file)
    except ConfigValidationError as e:
        for problem in e.problems:
            print(f"{args.file}:{problem.line or '?'}: {problem.path}: {problem.message}")
        print(f"{len(e.problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.file}: ok ({len(config.components)} components, {len(config.generators)} generator(s))")
    return 0


def run_plan(args) -> int:
    from ragkit.answer.budget import context_window_for, counter_for, plan_budget
    from ragkit.answer.prompting import system_prompt_for
    from ragkit.config import load_pipeline
    from ragkit.errors import ConfigError

    config = load_pipeline(args.file)
    print("# resolved pipeline")
    print(config.dump_yaml())
    budget = config.budget
    print("# token budget")
    for name, spec in config.generators.items():
        window = (
            budget.context_window or getattr(spec.config, "context_window", None) or getattr(spec.config, "n_ctx", None)
        )
        if not window:
            try:
                window = context_window_for(spec.type, str(getattr(spec.config, "model", "")))
            except ConfigError as e:
                print(f"## generator {name} ({spec.type}): {e}")
                continue
        plan = plan_budget(
            window,
            system_prompt=system_prompt_for(args.question),
            question=args.question,
            reserved_output=budget.reserved_output_tokens,
            count=counter_for(None),
        )
        print(f"## generator {name} ({spec.type}), window {window} (counted with tiktoken + safety margin)")
        print(plan.table())
    router = config.components.get("router")
    if router is not None:
        from ragkit.generate.rules import routing_table
        from ragkit.pipeline import build_component

        print("# routing table")
        for row in routing_table(build_component(router)):
            print("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
    return 0


def run_schema(args) -> int:
    from ragkit.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def run_usage(args) -> int:
    from dataclasses import asdict

    from ragkit.answer.ledger import read_usage_reports, summarise

    summary = summarise(read_usage_reports(args.file))
    print(json.dumps(asdict(summary), default=str) if args.json else summary.table())
    return 0
