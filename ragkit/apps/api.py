"""An OpenAI-compatible HTTP API over ragkit pipelines (``ragkit serve --api``; needs the ``web`` extra).

``POST /v1/chat/completions`` answers the last user message from the model's index, streamed (server-sent
events in OpenAI's chunk format, ending with ``data: [DONE]``) or not; earlier turns are history, trimmed to a
token budget, and follow-ups are rewritten for retrieval (``ragkit.answer.conversation``). The ``model`` field
names one of the served pipelines: one server can serve several pipeline YAMLs, a catalog bot among them.
Sources, grounding and the searched query come back in a ``ragkit`` field that official clients ignore.
``GET /v1/models`` lists the models, ``POST /v1/search`` runs hybrid search (``query``, ``top_k``, ``filter``),
``GET /healthz`` says the server is up. Auth, size limits and the bounded queue: ``ragkit.apps.api_guard``.
Every error is ``{"error": {"message", "type", "param", "code"}}`` with a 4xx or 5xx status; no traceback
reaches a client.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Sequence

from ragkit.apps.api_guard import Gate, check_token, read_body
from ragkit.apps.api_protocol import (
    SSE_DONE,
    ApiError,
    ChatRequest,
    Completion,
    SearchRequest,
    conversation,
    decode_json,
    hit_data,
    parse,
    sse,
)
from ragkit.errors import (
    AuthError,
    BudgetError,
    ConfigError,
    ContextOverflow,
    RagkitError,
    RateLimited,
    Timeout,
    Unavailable,
)

log = logging.getLogger("ragkit.apps.api")


@dataclass
class ApiSettings:
    """Limits of the API server; the token comes from ``api_guard.token_from_env``."""

    token: str | None = None
    max_body_bytes: int = 1 << 20
    chat_active: int = 4
    chat_waiting: int = 16
    search_active: int = 8
    search_waiting: int = 64
    history_tokens: int = 2048
    max_question_chars: int = 8000
    request_timeout_s: float = 600.0


@dataclass
class ServedModel:
    """One model name the API answers for: what answers (``aask``/``astream``) and the ``RAG`` it searches."""

    name: str
    answerer: Any
    rag: Any
    title: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def takes_filter(self) -> bool:
        params = inspect.signature(self.answerer.astream).parameters
        return "filter" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def api_error(e: BaseException) -> ApiError:
    """The HTTP error a failure becomes; anything unexpected is a 500 whose details stay in the server log."""
    if isinstance(e, ApiError):
        return e
    text = f"{type(e).__name__}: {e}"
    if isinstance(e, (BudgetError, ContextOverflow)):
        return ApiError(400, f"the conversation does not fit the model's context: {e}", code="context_length_exceeded")
    if isinstance(e, RateLimited):
        after = {"Retry-After": str(max(1, int(e.retry_after or 1)))}
        return ApiError(429, f"the model provider is rate-limiting: {e}", type="rate_limit_error", headers=after)
    if isinstance(e, (Timeout, asyncio.TimeoutError)):
        return ApiError(504, f"no answer in time: {e or 'request timeout'}", type="timeout_error", code="timeout")
    if isinstance(e, Unavailable):
        return ApiError(
            503, f"the model provider is unavailable: {e}", type="server_error", code="upstream_unavailable"
        )
    if isinstance(e, AuthError):
        return ApiError(502, f"the model provider refused ragkit's credentials: {e}", type="server_error")
    if isinstance(e, (ConfigError, RagkitError)):
        return ApiError(500, text, type="server_error", code="ragkit_error")
    log.error("unexpected error answering a request", exc_info=e)
    return ApiError(500, "internal server error (details are in the server log)", type="server_error")


def _check_filter(spec: Mapping[str, Any] | None, param: str) -> None:
    from ragkit.retrieve.filters import parse_filter

    try:
        parse_filter(spec)
    except ConfigError as e:
        raise ApiError(400, str(e), param=param, code="invalid_filter") from None


def create_api(models: Sequence[ServedModel], settings: ApiSettings | None = None) -> Any:
    """The Starlette app serving ``models`` (the first is the default for ``/v1/search``)."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.routing import Route
    except ImportError as e:
        raise ConfigError("the API needs starlette and uvicorn: pip install 'ragkit[web]'") from e
    from ragkit.answer.budget import tiktoken_counter
    from ragkit.answer.conversation import trim_history

    settings = settings or ApiSettings()
    if not models:
        raise ConfigError("the API needs at least one model to serve")
    by_name = {m.name: m for m in models}
    if len(by_name) != len(models):
        raise ConfigError(f"model names must be unique, got {[m.name for m in models]}")
    chat_gate = Gate("chat", settings.chat_active, settings.chat_waiting)
    search_gate = Gate("search", settings.search_active, settings.search_waiting)
    count = tiktoken_counter()

    def respond(error: ApiError) -> Any:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    def endpoint(handler: Callable[[Request], Awaitable[Any]], *, auth: bool = True) -> Callable[[Request], Any]:
        async def run(request: Request) -> Any:
            try:
                if auth:
                    check_token(settings.token, request.headers.get("authorization"))
                return await handler(request)
            except Exception as e:  # every failure leaves in the error shape, never as a traceback
                return respond(api_error(e))

        return run

    def lookup(name: str | None) -> ServedModel:
        served = by_name.get(name) if name is not None else models[0]
        if served is None:
            raise ApiError(
                404,
                f"model {name!r} does not exist; served models: {', '.join(by_name)}",
                type="not_found_error",
                param="model",
                code="model_not_found",
            )
        return served

    async def body_of(request: Request) -> Any:
        return decode_json(await read_body(request, settings.max_body_bytes))

    async def chat(request: Request) -> Any:
        req: ChatRequest = parse(ChatRequest, await body_of(request))
        served = lookup(req.model)
        question, history = conversation(req, settings.max_question_chars)
        kwargs: dict[str, Any] = {"history": trim_history(history, count, settings.history_tokens)}
        flt = req.ragkit.filter if req.ragkit else None
        if flt is not None:
            if not served.takes_filter():
                raise ApiError(400, f"model {served.name!r} takes no filter", param="ragkit.filter")
            _check_filter(flt, "ragkit.filter")
            kwargs["filter"] = flt
        completion = Completion(served.name)
        if not req.stream:
            async with chat_gate.slot():
                reply = await asyncio.wait_for(served.answerer.aask(question, **kwargs), settings.request_timeout_s)
            return JSONResponse(completion.reply(reply))
        if chat_gate.full():  # refused before the 200 goes out; a race past this check ends the stream with an error
            raise chat_gate.refusal()
        usage = bool((req.stream_options or {}).get("include_usage"))
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(_events(served, question, kwargs, completion, usage), headers=headers,
                                 media_type="text/event-stream")  # fmt: skip

    async def _events(served: ServedModel, question: str, kwargs: dict[str, Any], completion: Completion, usage: bool):
        final = None
        try:
            async with chat_gate.slot():
                yield sse(completion.chunk({"role": "assistant", "content": ""}))
                stream = served.answerer.astream(question, **kwargs)
                try:
                    async for delta in stream:
                        if delta.text:
                            yield sse(completion.chunk({"content": delta.text}))
                        if delta.reply is not None:
                            final = delta.reply
                finally:
                    await stream.aclose()
            yield sse(completion.last_chunk(final))
            if usage:
                yield sse(completion.usage_chunk(final))
        except Exception as e:  # the 200 is out: the error travels as an event, as OpenAI's streams do
            yield sse(api_error(e).body())
        yield SSE_DONE

    async def search(request: Request) -> Any:
        req: SearchRequest = parse(SearchRequest, await body_of(request))
        served = lookup(req.model)
        if req.filter is not None:
            _check_filter(req.filter, "filter")
        async with search_gate.slot():
            hits = await served.rag.asearch(req.query, top_k=req.top_k, filter=req.filter)
        data = [{"object": "search.hit", "rank": i, **hit_data(h)} for i, h in enumerate(hits, 1)]
        return JSONResponse({"object": "list", "model": served.name, "query": req.query, "data": data})

    def model_card(m: ServedModel) -> dict[str, Any]:
        return {"id": m.name, "object": "model", "created": m.created, "owned_by": "ragkit"}

    async def list_models(request: Request) -> Any:
        return JSONResponse({"object": "list", "data": [model_card(m) for m in models]})

    async def get_model(request: Request) -> Any:
        return JSONResponse(model_card(lookup(request.path_params["name"])))

    async def health(request: Request) -> Any:
        return JSONResponse({"status": "ok"})

    async def not_found(request: Request, exc: Exception) -> Any:
        status = getattr(exc, "status_code", 404)
        kind = "not_found_error" if status == 404 else "invalid_request_error"
        message = f"{request.method} {request.url.path}: " + ("no such endpoint" if status == 404 else "not allowed")
        return respond(ApiError(status, message, type=kind, code="unknown_url" if status == 404 else None))

    async def close_models() -> None:
        for m in models:
            for obj in dict.fromkeys([m.answerer, m.rag]):
                close = getattr(obj, "aclose", None)
                if close is not None:
                    try:
                        await close()
                    except Exception as e:  # a store that fails to close must not hide the others
                        log.warning("closing model %s: %s: %s", m.name, type(e).__name__, e)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any):
        yield
        await close_models()

    routes = [
        Route("/v1/chat/completions", endpoint(chat), methods=["POST"]),
        Route("/v1/search", endpoint(search), methods=["POST"]),
        Route("/v1/models", endpoint(list_models), methods=["GET"]),
        Route("/v1/models/{name:path}", endpoint(get_model), methods=["GET"]),
        Route("/healthz", endpoint(health, auth=False), methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found}, lifespan=lifespan)
    app.state.gates = {"chat": chat_gate, "search": search_gate}
    return app


def model_specs(values: Sequence[str], config: str | None) -> list[tuple[str, str | None]]:
    """``NAME=PIPELINE.yaml`` (or a bare path, named by its stem) per served model; none: ``config`` alone."""
    specs: list[tuple[str, str | None]] = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).stem, value
        if not name.strip() or not path.strip():
            raise ConfigError(f"--model {value!r}: expected NAME=PIPELINE.yaml")
        specs.append((name.strip(), path.strip()))
    if not specs:
        specs.append((Path(config).stem if config else "ragkit", config))
    return specs


def served_models(specs: Sequence[tuple[str, str | None]]) -> list[ServedModel]:
    """Build each named pipeline (a ``catalog`` section makes it the catalog bot); models load on first use."""
    from ragkit.config import load_pipeline
    from ragkit.pipeline import build_app

    out = []
    for name, path in specs:
        app = build_app(load_pipeline(path))
        out.append(ServedModel(name, app.answerer, app.rag, app.title))
    return out


__all__ = ["create_api", "ApiSettings", "ServedModel", "api_error", "model_specs", "served_models"]
