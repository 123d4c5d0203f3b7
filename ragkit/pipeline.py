"""The RAG pipeline: index, search, ask — built lazily from a validated ``PipelineConfig``."""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import replace
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable, Mapping, Sequence

from ragkit import tracing
from ragkit._aio import run_sync
from ragkit.answer.abstention import without_question_thresholds
from ragkit.answer.grounding import checked_reply, may_rewrite
from ragkit.config import AppBuild, ComponentSpec, PipelineConfig, load_pipeline
from ragkit.errors import ConfigError
from ragkit.ingest.indexing import Indexer, IndexReport, Manifest, fits_embedder, require_index
from ragkit.types import Delta, Document, Hit, Message, Reply

if TYPE_CHECKING:
    from ragkit.answer.budget import AssembledPrompt
    from ragkit.answer.ledger import Ledger
    from ragkit.generate.routed import RoutedGenerator
    from ragkit.generate.rules import Router
    from ragkit.model_info import PriceTable
    from ragkit.protocols import Chunker, Compressor, Embedder, Generator, Reranker, Retriever, VectorStore
    from ragkit.retry import RetryPolicy

log = logging.getLogger("ragkit.pipeline")


def build_component(spec: ComponentSpec, **collaborators: Any) -> Any:
    """Instantiate a registered component: every component has ``from_config(config, **collaborators)`` and takes
    the collaborators it needs (embedder, store, retry, ...) from the keywords, ignoring the rest."""
    from ragkit import registry

    cls = registry.resolve(spec.role, spec.type)
    return cls.from_config(spec.config, **collaborators)


def build_app(config: PipelineConfig, **rag_kwargs: Any) -> AppBuild:
    """What answers questions for this pipeline: the app its config names (a ``catalog`` section builds the catalog
    bot), else the plain ``RAG`` pipeline."""
    for section in config.sections.values():
        return section.build(config, **rag_kwargs)
    rag = RAG(config, **rag_kwargs)
    return AppBuild(rag, rag)


class RAG:
    """Retrieve → rerank → compress → assemble → generate, on the components a pipeline config names."""

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        generators: Mapping[str, Generator] | None = None,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.config = config or load_pipeline(None)
        self.index_dir = Path(self.config.index_dir)
        self._generators: dict[str, Generator] = dict(generators or {})
        self._embedder_override = embedder
        self._store_override = store
        self._clock = clock

    @classmethod
    def from_yaml(cls, path: str | Path | None, **kwargs: Any) -> RAG:
        """Load, validate, then wrap a pipeline file (``None``: the embedded defaults)."""
        return cls(load_pipeline(path), **kwargs)

    # Components, built on first use ------------------------------------------------------------

    @cached_property
    def retry(self) -> RetryPolicy:
        from ragkit.retry import RetryPolicy

        return RetryPolicy(self.config.retry)

    @cached_property
    def embedder(self) -> Embedder:
        from ragkit.ingest.embedding import CachedEmbedder, SqliteEmbeddingCache

        inner = self._embedder_override or build_component(self.config.components["embedder"], retry=self.retry)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        return CachedEmbedder(inner, SqliteEmbeddingCache(self.index_dir / "embeddings.sqlite"))

    @cached_property
    def chunker(self) -> Chunker:
        inner = getattr(self.embedder, "inner", self.embedder)
        counter = inner.counter() if hasattr(inner, "counter") else None
        return fits_embedder(build_component(self.config.components["chunker"], counter=counter), inner)

    @cached_property
    def store(self) -> VectorStore:
        if self._store_override is not None:
            return self._store_override
        return build_component(self.config.components["store"], path=str(self.index_dir / "store"))

    @cached_property
    def sparse_encoder(self) -> Any:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        return build_component(self.config.components["sparse"], index_dir=str(self.index_dir))

    @cached_property
    def retriever(self) -> Retriever:
        return build_component(
            self.config.components["retriever"],
            embedder=self.embedder,
            store=self.store,
            sparse_encoder=self.sparse_encoder,
        )

    @cached_property
    def reranker(self) -> Reranker | None:
        spec = self.config.components.get("reranker")
        return build_component(spec, embedder=self.embedder) if spec else None

    @cached_property
    def compressor(self) -> Compressor | None:
        spec = self.config.components.get("compressor")
        return tracing.traced(build_component(spec), "compress", "compress") if spec else None

    @cached_property
    def router(self) -> Router | None:
        spec = self.config.components.get("router")
        # The router may embed the query; through the cache it reuses the vector retrieval computed.
        return build_component(spec, embedder=self.embedder) if spec else None

    @cached_property
    def prices(self) -> PriceTable:
        """The price table for the usage ledger: built-in prices overlaid with ``ledger.prices``."""
        from ragkit.model_info import PriceTable

        prices = self.config.ledger.prices
        return PriceTable.from_mapping(prices, source="ledger.prices") if prices else PriceTable()

    @cached_property
    def response_cache(self) -> Any:
        from ragkit.answer.response_cache import ResponseCache

        return ResponseCache.from_settings(self.config.settings["response_cache"], self.index_dir)

    @cached_property
    def routed_generator(self) -> RoutedGenerator | None:
        """With a router configured: every generator behind one routed generator, with fallbacks and escalation."""
        if self.router is None:
            return None
        from ragkit.generate.routed import LazyGenerator, RoutedGenerator

        routing = self.config.routing
        lazy = {
            name: LazyGenerator(name, partial(self.generator, name), getattr(spec.config, "context_window", None))
            for name, spec in self.config.generators.items()
        }
        return RoutedGenerator(self.router, lazy, routing.fallback_chain, prices=routing.prices)

    def generator(self, name: str | None = None) -> Generator:
        """The generator called ``name`` (default: ``default_generator``), built on first use."""
        name = name or self.config.default_generator
        if name is None:
            raise ConfigError("no generator configured: add one under 'generators' and name it in 'default_generator'")
        if name not in self._generators:
            spec = self.config.generators.get(name)
            if spec is None:
                raise ConfigError(
                    f"no generator named {name!r}; configured: {', '.join(self.config.generators) or 'none'}"
                )
            self._generators[name] = build_component(spec, retry=self.retry)
        gen = self._generators[name]
        return gen if self.response_cache is None else self.response_cache.wrap(gen)

    # Indexing and search -------------------------------------------------------------------------

    def _indexer(self) -> Indexer:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        return Indexer(
            chunker=self.chunker,
            embedder=self.embedder,
            store=self.store,
            manifest=Manifest(self.index_dir / "manifest.sqlite"),
            sparse_encoder=self.sparse_encoder,
        )

    async def aindex(
        self, docs: Iterable[Document], *, prune: bool = False, progress: Any = None, total: int | None = None
    ) -> IndexReport:
        """Index documents incrementally (see ``ragkit.ingest.indexing``)."""
        indexer = self._indexer()
        try:
            return await indexer.index(docs, prune=prune, progress=progress, total=total)
        finally:
            indexer.manifest.close()
            flush = getattr(self.store, "optimize", None)
            if flush:
                await flush()

    def index(self, docs: Iterable[Document], **kwargs: Any) -> IndexReport:
        return run_sync(self.aindex(docs, **kwargs))

    async def asearch(
        self, query: str, *, top_k: int | None = None, filter: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """Retrieve and rerank."""
        settings = self.config.retrieval
        top_k = settings.top_k if top_k is None else top_k
        await require_index(self.store, self.index_dir)
        spec = self.config.components.get("reranker")
        if spec is None or spec.type == "none":
            # Nothing reorders the hits, so fetching extra candidates would only cost time.
            return list(await self.retriever.retrieve(query, top_k, filter))
        hits = await self.retriever.retrieve(query, max(top_k, settings.candidates), filter)
        with tracing.span("rerank"):
            hits = await self.reranker.rerank(query, hits, top_k)
        return list(hits[:top_k])

    def search(self, query: str, **kwargs: Any) -> list[Hit]:
        return run_sync(self.asearch(query, **kwargs))

    # Answering -------------------------------------------------------------------------------------

    def _assemble(
        self, question: str, hits: Sequence[Hit], history: Sequence[Message], gen: Generator, ledger: Ledger
    ) -> AssembledPrompt:
        """The prompt planned for ``gen``'s own window and tokenizer."""
        from ragkit.answer.budget import assemble_prompt, counter_for, plan_budget
        from ragkit.answer.prompting import system_prompt_for

        budget = self.config.budget
        window = budget.context_window or gen.context_window
        count = counter_for(gen)
        system = system_prompt_for(question)
        with ledger.stage("assemble"):
            with tracing.span("plan"):
                plan = plan_budget(
                    window,
                    system_prompt=system,
                    history=history,
                    question=question,
                    reserved_output=budget.reserved_output_tokens,
                    count=count,
                )
            if budget.max_source_tokens is not None and plan.sources_budget > budget.max_source_tokens:
                plan = replace(plan, sources_budget=budget.max_source_tokens)
            return assemble_prompt(
                question,
                hits,
                system_prompt=system,
                history=history,
                budget_plan=plan,
                count=count,
                compressor=self.compressor,
            )

    async def _prepare(
        self, question: str, history: Sequence[Message], filter: Mapping[str, Any] | None, generator: str | None
    ) -> tuple[Ledger, Any, dict[str, Any], Callable[[Any], Sequence[Message]]]:
        """Retrieve, then choose the generator; the prompt is planned per generator when it is called (route before
        budget), so a fallback or an escalation gets a prompt re-planned for its own window."""
        from ragkit.answer.conversation import rewrite_for
        from ragkit.answer.ledger import Ledger, embedding_tokens

        ledger = Ledger(clock=self._clock, prices=self.prices)
        rewrite = await rewrite_for(question, history, self.config, ledger, self.generator)
        with ledger.stage("retrieve") as stage:
            hits = await self.asearch(rewrite.query, filter=filter)
            stage.embedding_tokens = embedding_tokens(self.embedder, rewrite.query)
        gen = self.generator(generator) if generator or self.routed_generator is None else self.routed_generator
        prompts: dict[int, AssembledPrompt] = {}

        def prompt_for(target: Any) -> Sequence[Message]:
            if id(target) not in prompts:
                prompts[id(target)] = self._assemble(question, hits, history, target, ledger)
            return list(prompts[id(target)].messages)

        kwargs: dict[str, Any] = {"max_tokens": self.config.budget.reserved_output_tokens}
        if gen is self.routed_generator:
            kwargs.update(query=rewrite.query, hits=hits, prompt_for=prompt_for)
        state = {"prompts": prompts, "kwargs": kwargs, "query": rewrite, "hits": hits}
        return ledger, gen, state, prompt_for

    def _used_prompt(self, gen: Any, reply: Reply, prompts: Mapping[int, AssembledPrompt]) -> AssembledPrompt:
        if gen is self.routed_generator:
            used = (reply.metadata.get("route") or {}).get("generator")
            target = gen.generators.get(used)
            if target is not None and id(target) in prompts:
                return prompts[id(target)]
        return prompts[id(gen)]

    def _finish(self, reply: Reply, ledger: Any, gen: Any, state: Mapping[str, Any]) -> Reply:
        prompt = self._used_prompt(gen, reply, state["prompts"])
        compression = prompt.plan.compression or {}
        if "tokens_before" in compression:
            ledger.note_compression(compression["tokens_before"], compression["tokens_after"])
        report = ledger.report()
        self._write_ledger(report)
        meta = {**reply.metadata, "plan": prompt.plan, "usage_report": report, "generator": getattr(gen, "id", "")}
        meta["query"] = state["query"].as_dict()
        reply = replace(reply, sources=tuple(s.hit for s in prompt.sources), metadata=meta)
        q = state["query"]  # grounding and abstention checks: metadata["grounding"], metadata["abstention"]
        return checked_reply(reply, q.original, self.config.grounding, self._answer_abstention, query=q.query)

    @cached_property
    def _answer_abstention(self) -> Any:
        """The abstention thresholds left once an answer exists: the question's were decided before generation."""
        return without_question_thresholds(self.config.abstention)

    def _before_generation(self, question: str, ledger: Any, state: dict[str, Any]) -> Reply | None:
        """The abstention phrase, without running a model, when the question's own signals fall under the
        thresholds (docs/grounding.md); None to go on and generate."""
        from ragkit.answer.abstention import abstain_before_generation

        early = abstain_before_generation(question, state["query"].query, state["hits"], self.config.abstention)
        if early is None:
            return None
        report = ledger.report()
        self._write_ledger(report)
        meta = {**early.metadata, "usage_report": report, "generator": "", "query": state["query"].as_dict()}
        return replace(early, metadata=meta)

    def _write_ledger(self, report: Any) -> None:
        path = self.config.ledger.jsonl_path
        if path:
            from ragkit.answer.ledger import JsonlLedgerWriter

            JsonlLedgerWriter(path).write(report)

    async def aask(
        self,
        question: str,
        *,
        history: Sequence[Message] = (),
        filter: Mapping[str, Any] | None = None,
        generator: str | None = None,
    ) -> Reply:
        """Answer ``question`` from the index, citing numbered sources."""
        with tracing.span("ask"):
            ledger, gen, state, prompt_for = await self._prepare(question, history, filter, generator)
            early = self._before_generation(question, ledger, state)
            if early is not None:
                return early
            routed = gen is self.routed_generator
            with ledger.stage("generate") as stage:
                messages = [] if routed else prompt_for(gen)
                reply = await gen.generate(messages, **state["kwargs"])
                stage.add_reply(reply)
            return self._finish(reply, ledger, gen, state)

    def ask(self, question: str, **kwargs: Any) -> Reply:
        return run_sync(self.aask(question, **kwargs))

    async def astream(
        self,
        question: str,
        *,
        history: Sequence[Message] = (),
        filter: Mapping[str, Any] | None = None,
        generator: str | None = None,
    ) -> AsyncIterator[Delta]:
        """Stream the answer; the last delta carries the full ``Reply`` with sources and usage."""
        with tracing.span("ask"):
            ledger, gen, state, prompt_for = await self._prepare(question, history, filter, generator)
            early = self._before_generation(question, ledger, state)
            if early is not None:
                yield Delta(text=early.text)
                yield Delta(reply=early)
                return
            routed = gen is self.routed_generator
            final: Reply | None = None
            hold = may_rewrite(self.config.grounding, self.config.abstention)  # checks may rewrite: stream at the end
            with ledger.stage("generate") as stage:
                messages = [] if routed else prompt_for(gen)
                async for delta in gen.stream(messages, **state["kwargs"]):
                    if delta.reply is not None:
                        stage.add_reply(delta.reply)
                        final = delta.reply
                        if delta.text and not hold:
                            yield Delta(text=delta.text)
                    elif not (hold and delta.text):
                        yield delta
            if final is not None:
                done = self._finish(final, ledger, gen, state)
                if hold and done.text:
                    yield Delta(text=done.text)
                yield Delta(reply=done)

    async def aclose(self) -> None:
        close = getattr(self.store, "close", None) if "store" in self.__dict__ else None
        if close:
            result = close()
            if inspect.isawaitable(result):
                await result


__all__ = ["RAG", "build_component", "build_app"]
