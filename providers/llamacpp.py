"""Local generation and embeddings with llama.cpp (``llama-cpp-python``); the default model is the registry's.

One ``Llama`` object is not thread-safe: every inference call runs in a worker thread under the instance's lock.
Tool calls are grammar-constrained JSON, so even a 135M model emits calls that parse and match the tools' schemas.

Sharing the CPU: llama.cpp's threads meet at a barrier after every graph node. When another process holds a core,
a thread that spins at the barrier burns the slice its descheduled partner needs, and an answer takes 20x as long.
So OpenMP waits passively (``OMP_WAIT_POLICY=PASSIVE`` unless set), and before each call the thread count drops to
the CPUs that no other runnable task is using (``adapt_threads``).
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Literal, Mapping, Sequence

from ragkit.component import ComponentConfig, Field
from ragkit.errors import BadRequest, ConfigError, ContextOverflow, ProviderError, RagkitError
from ragkit.generate.base import BaseEmbedder, BaseGenerator
from ragkit.local_models import DEFAULT_GGUF, TEST_GGUF, resolve_gguf
from ragkit.retry import RetryPolicy
from ragkit.types import Delta, Message, Reply, StopReason, ToolCall, ToolSpec, Usage

log = logging.getLogger("ragkit.providers.llamacpp")
PROVIDER = "llamacpp"
CUDA_BUILD_HINT = (
    "rebuild llama-cpp-python with CUDA: scripts/build_llama_cuda.sh "
    '(CMAKE_ARGS="-DGGML_CUDA=on" pip install --no-binary llama-cpp-python --force-reinstall llama-cpp-python; '
    "see docs/local_models.md)"
)
_FINISH: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
Device = Literal["auto", "cpu", "cuda"]


# libgomp reads these once, when llama.cpp's CPU backend loads it: they must be set before the first import.
OPENMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def _llama_cpp() -> Any:
    if "llama_cpp" not in sys.modules:
        for key, value in OPENMP_DEFAULTS.items():
            os.environ.setdefault(key, value)
    try:
        import llama_cpp
    except ImportError as e:
        raise ConfigError("the llama.cpp provider needs llama-cpp-python: pip install 'ragkit[llamacpp]'") from e
    _route_native_logs(llama_cpp)
    return llama_cpp


# ggml_log_level: 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line. llama.cpp's warnings
# are mostly notices (e.g. pooling overrides), so each level goes one step down.
_NATIVE_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.INFO, 4: logging.WARNING}
_native_log = logging.getLogger("ragkit.providers.llamacpp.native")
_native_callback: Any = None


def _route_native_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's own log lines to Python logging instead of stderr (llama-cpp-python prints its WARNs)."""
    global _native_callback
    if _native_callback is not None:
        return
    last = [logging.DEBUG]

    def forward(level: int, text: bytes, _user: Any) -> None:
        if level != 5:
            last[0] = _NATIVE_LEVELS.get(level, logging.DEBUG)
        line = text.decode("utf-8", "replace").rstrip()
        if line and _native_log.isEnabledFor(last[0]):
            _native_log.log(last[0], "%s", line)

    # Kept in a module global: ctypes would free a callback that llama.cpp still calls.
    _native_callback = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_native_callback, None)


def gpu_visible(env: Mapping[str, str] = os.environ) -> bool:
    """Whether an NVIDIA GPU is visible to this process (device nodes, else ``nvidia-smi -L``).

    ``CUDA_VISIBLE_DEVICES`` set to nothing (or -1) hides every GPU from CUDA, whatever the device nodes say.
    """
    if env.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return False
    if glob.glob("/dev/nvidia[0-9]*"):
        return True
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def choose_gpu_layers(device: Device, n_gpu_layers: int | None, *, offload_supported: bool, gpu: bool) -> int:
    """Layers to offload: all (-1) or ``n_gpu_layers`` on a usable GPU, else 0; ``device="cuda"`` never falls back."""
    if device == "cpu":
        return 0
    if device == "cuda":
        if not offload_supported:
            raise ConfigError(f"device='cuda' but this llama-cpp-python build has no GPU offload; {CUDA_BUILD_HINT}")
        if not gpu:
            raise ConfigError("device='cuda' but no NVIDIA GPU is visible (no /dev/nvidia*, nvidia-smi finds none)")
        return -1 if n_gpu_layers is None else n_gpu_layers
    if offload_supported and gpu:
        return -1 if n_gpu_layers is None else n_gpu_layers
    return 0


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _procs_running() -> int | None:
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"procs_running "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def runnable_elsewhere(read: Callable[[], int | None] = _procs_running, samples: int = 3) -> int | None:
    """Runnable tasks on this machine besides the caller, right now (Linux ``procs_running``); None when unknown.

    The count is instantaneous, so the median of a few back-to-back reads smooths a task that just woke up.
    """
    reads = [n for n in (read() for _ in range(samples)) if n is not None]
    if not reads:
        return None
    return max(0, sorted(reads)[len(reads) // 2] - 1)  # the caller itself is running while it reads


def choose_threads(wanted: int, cpus: int, busy: int | None) -> int:
    """Threads for one call: ``wanted``, less the CPUs other runnable tasks occupy, never below one."""
    if busy is None:
        return wanted
    return max(1, min(wanted, cpus - busy))


class LlamaCppModelConfig(ComponentConfig):
    """Which GGUF file llama.cpp loads, and on what hardware."""

    model: str = Field(
        DEFAULT_GGUF, min_length=1, max_length=4096, description="Known model name or path to a .gguf file."
    )
    n_ctx: int = Field(2048, ge=64, le=1_048_576, description="Context window in tokens (prompt + answer).")
    n_threads: int | None = Field(
        None, ge=1, le=512, description="CPU threads for generation; None = the CPUs this process may use."
    )
    n_threads_batch: int | None = Field(
        None, ge=1, le=512, description="CPU threads for prompt processing; None = n_threads."
    )
    adapt_threads: bool = Field(
        True,
        description="Before each call, leave out the CPUs that other runnable processes occupy (Linux), so a "
        "competing process slows an answer about 2x instead of 20x; false = always the configured threads.",
    )
    n_batch: int = Field(512, ge=1, le=65_536, description="Prompt tokens evaluated per batch.")
    device: Device = Field(
        "auto", description="auto: GPU when the build and machine have one; cpu; cuda (error if unusable)."
    )
    n_gpu_layers: int | None = Field(None, ge=-1, le=10_000, description="Layers to offload on GPU; None = all (-1).")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Sampling seed when temperature > 0.")


class LlamaCppConfig(LlamaCppModelConfig):
    """A GGUF chat model run in-process by llama.cpp."""

    max_output_tokens: int = Field(512, ge=1, le=1_048_576, description="Default answer length cap.")
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="0 = greedy, reproducible.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling when temperature > 0.")
    repeat_penalty: float = Field(
        1.1,
        ge=0.5,
        le=3.0,
        description="Penalty on recently generated tokens, for free text only: JSON must repeat its punctuation and "
        "tool arguments copy the user's words, so grammar-constrained replies use none.",
    )
    logprobs: bool = Field(
        False, description="Put the answer's mean token log-probability in metadata['mean_logprob']."
    )
    max_tool_calls: int = Field(4, ge=1, le=64, description="Most tool calls the model may emit in one reply.")
    prefix_cache: bool = Field(
        False,
        description="Reuse the KV cache of a prompt prefix shared with the previous call: faster multi-turn, "
        "but greedy output can then differ from a cold run (one token re-evaluated alone rounds differently).",
    )


class _Runtime:
    """One loaded ``Llama`` and the lock around it; shared by the generator and embedder code paths."""

    def __init__(
        self,
        config: LlamaCppModelConfig,
        *,
        embedding: bool,
        pooling: int | None = None,
        gpu_probe: Callable[[], bool] = gpu_visible,
        load_probe: Callable[[], int | None] = runnable_elsewhere,
    ) -> None:
        self.config = config
        self.path: Path = resolve_gguf(config.model)
        self.cpus = usable_cpus()
        self.n_threads = config.n_threads or self.cpus
        self.n_threads_batch = config.n_threads_batch or self.n_threads
        self._load_probe = load_probe
        self.threads_now = (self.n_threads, self.n_threads_batch)
        self._lib = _llama_cpp()
        offload = bool(self._lib.llama_supports_gpu_offload())
        # Probe for a GPU only when the answer matters (the probe may run nvidia-smi).
        wants_probe = config.device == "cuda" or (config.device == "auto" and offload)
        self.n_gpu_layers = choose_gpu_layers(
            config.device,
            config.n_gpu_layers,
            offload_supported=offload,
            gpu=wants_probe and gpu_probe(),
        )
        log.info(
            "%s: n_gpu_layers=%d (device=%s, gpu offload %s)",
            self.path.name,
            self.n_gpu_layers,
            config.device,
            "built in" if offload else "not built in",
        )
        self._embedding = embedding
        self._pooling = pooling
        self.lock = threading.Lock()  # inference
        self._load_lock = threading.Lock()
        self._llama: Any = None

    @property
    def llama(self) -> Any:
        if self._llama is None:
            with self._load_lock:
                if self._llama is None:
                    self._llama = self._load()
        return self._llama

    def _load(self) -> Any:
        c = self.config
        kwargs: dict[str, Any] = dict(
            model_path=str(self.path),
            n_ctx=c.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads_batch,
            n_batch=min(c.n_batch, c.n_ctx),
            n_gpu_layers=self.n_gpu_layers,
            seed=c.seed,
            embedding=self._embedding,
            verbose=False,  # llama.cpp's own stderr chatter; a library prints nothing
        )
        if self._pooling is not None:
            kwargs["pooling_type"] = self._pooling
        try:
            llama = self._lib.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as e:
            raise ConfigError(f"llama.cpp could not load {self.path}: {e}") from e
        template = (
            "GGUF metadata tokenizer.chat_template" if "tokenizer.chat_template" in llama.metadata else "built-in"
        )
        log.info(
            "loaded %s: n_ctx=%d n_embd=%d, chat format %r (%s)",
            self.path.name,
            llama.n_ctx(),
            llama.n_embd(),
            llama.chat_format,
            template,
        )
        if template == "built-in" and not self._embedding:
            log.warning(
                "%s has no chat template in its metadata; llama-cpp-python uses %r", self.path.name, llama.chat_format
            )
        return llama

    def fit_threads(self) -> tuple[int, int]:
        """Set this call's thread counts from the CPUs other tasks leave free; call with the lock held, after load."""
        wanted = (self.n_threads, self.n_threads_batch)
        if self.config.adapt_threads and self.n_gpu_layers == 0 and max(wanted) > 1:
            busy = self._load_probe()
            wanted = (choose_threads(wanted[0], self.cpus, busy), choose_threads(wanted[1], self.cpus, busy))
        if wanted != self.threads_now:
            self._lib.llama_set_n_threads(self._llama._ctx.ctx, *wanted)
            log.debug("threads %s -> %s (%d CPUs)", self.threads_now, wanted, self.cpus)
            self.threads_now = wanted
        return wanted

    def count_tokens(self, text: str) -> int:
        # Tokenizing reads only the vocabulary, never the context, so it need not wait for the inference lock.
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


class _TokenRecorder:
    """A logits processor that counts sampling steps and, if asked, each sampled token's log-probability.

    The log-probabilities are under the unconstrained model (before grammar and penalties), which is what a
    confidence signal wants. The last sampled token is never scored: an end-of-turn token is not part of the
    answer, and a reply cut by ``max_tokens`` is scored without its final token.
    """

    def __init__(self, *, logprobs: bool) -> None:
        self.steps = 0
        self.values: list[float] = []
        self._logprobs = logprobs
        self._prev: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.steps += 1
        if not self._logprobs:
            return scores
        import numpy as np

        # The token sampled at the previous step is now the last input id; score it with that step's distribution.
        if self._prev is not None and len(input_ids):
            self.values.append(float(self._prev[int(input_ids[-1])]))
        top = float(np.max(scores))
        self._prev = scores - (top + math.log(float(np.sum(np.exp(scores - top)))))
        return scores

    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None


def tool_specs(tools: Sequence[Any]) -> list[ToolSpec]:
    """``ToolSpec``s from specs or tool objects (``.spec``, or ``name``/``description``/``json_schema()``)."""
    specs = []
    for t in tools:
        if isinstance(t, ToolSpec):
            specs.append(t)
        elif isinstance(getattr(t, "spec", None), ToolSpec):
            specs.append(t.spec)
        elif hasattr(t, "name") and callable(getattr(t, "json_schema", None)):
            specs.append(ToolSpec(t.name, getattr(t, "description", ""), dict(t.json_schema())))
        else:
            raise ConfigError(f"tools: expected ToolSpec or a tool object, got {type(t).__name__}")
    return specs


def tool_reply_schema(
    specs: Sequence[ToolSpec], *, max_calls: int, answer_schema: Mapping[str, Any] | None = None
) -> dict:
    """JSON Schema of a reply: ``{"tool_calls": [{"name", "arguments"}]}`` per the tools, or ``{"answer": ...}``."""
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": s.name}, "arguments": dict(s.parameters) or {"type": "object"}},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for s in specs
    ]
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "tool_calls": {"type": "array", "items": {"anyOf": calls}, "minItems": 1, "maxItems": max_calls}
                },
                "required": ["tool_calls"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"answer": dict(answer_schema) if answer_schema else {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            },
        ]
    }


def tool_prompt(specs: Sequence[ToolSpec]) -> str:
    """The system-prompt section that tells a local model which tools exist and how to call them."""
    lines = ["You have tools. Tools:"]
    for s in specs:
        lines.append(f"- {s.name}: {s.description} Arguments (JSON Schema): {json.dumps(dict(s.parameters))}")
    lines.append(
        'To call a tool, reply {"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}, '
        'copying values from the user\'s message. Otherwise reply {"answer": "<your answer>"}.'
    )
    return "\n".join(lines)


def chat_messages(messages: Sequence[Message], specs: Sequence[ToolSpec] | None) -> list[dict[str, str]]:
    """ragkit messages as plain chat turns; tool calls and results become text any chat template can render."""
    out: list[dict[str, str]] = []
    for m in messages:
        if m.role == "tool":
            label = "tool error" if m.is_error else "tool result"
            who = f" {m.name}" if m.name else ""
            out.append({"role": "user", "content": f"[{label}{who} for call {m.tool_call_id}]\n{m.content}"})
        elif m.role == "assistant" and m.tool_calls:
            calls = [{"name": c.name, "arguments": _loads_or_text(c.arguments)} for c in m.tool_calls]
            out.append({"role": "assistant", "content": json.dumps({"tool_calls": calls})})
        else:
            out.append({"role": m.role, "content": m.content})
    if specs:
        section = tool_prompt(specs)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + section}
        else:
            out.insert(0, {"role": "system", "content": section})
    return out


def _loads_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _translate(e: Exception) -> RagkitError:
    text = str(e)
    if "context window" in text or ("exceed" in text and "context" in text):
        return ContextOverflow(text, provider=PROVIDER)
    if isinstance(e, ValueError):
        return BadRequest(text, provider=PROVIDER)
    return ProviderError(f"{type(e).__name__}: {text}", provider=PROVIDER)


class LlamaCppGenerator(BaseGenerator):
    """Chat with a local GGUF model; the chat template comes from the GGUF metadata."""

    Config = LlamaCppConfig

    def __init__(
        self,
        config: LlamaCppConfig | None = None,
        *,
        retry: RetryPolicy | None = None,
        gpu_probe: Callable[[], bool] = gpu_visible,
        load_probe: Callable[[], int | None] = runnable_elsewhere,
    ) -> None:
        super().__init__(retry=retry)
        self.config = config or LlamaCppConfig()
        self._rt = _Runtime(self.config, embedding=False, gpu_probe=gpu_probe, load_probe=load_probe)
        self.id = f"{PROVIDER}:{self.config.model if '/' not in self.config.model else self._rt.path.stem}"
        self.context_window = self.config.n_ctx
        self.n_gpu_layers = self._rt.n_gpu_layers

    @classmethod
    def from_config(cls, config: LlamaCppConfig | Mapping[str, Any], **collaborators: Any) -> LlamaCppGenerator:
        probes = {k: collaborators[k] for k in ("gpu_probe", "load_probe") if k in collaborators}
        return cls(
            config if isinstance(config, cls.Config) else cls.Config.model_validate(config),
            retry=collaborators.get("retry"),
            **probes,
        )

    def __repr__(self) -> str:
        return f"LlamaCppGenerator(model={self.config.model!r}, n_ctx={self.config.n_ctx})"

    def load(self) -> None:
        """Load the model now instead of on first use."""
        _ = self._rt.llama

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (loaded on first access); not thread-safe, hold no other call open."""
        return self._rt.llama

    def count_tokens(self, text: str) -> int:
        return self._rt.count_tokens(text)

    def _request(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        specs: list[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
        recorder: _TokenRecorder,
    ) -> dict[str, Any]:
        c = self.config
        kwargs: dict[str, Any] = dict(
            messages=chat_messages(messages, specs),
            max_tokens=max_tokens or c.max_output_tokens,
            temperature=c.temperature,
            top_p=c.top_p,
            seed=c.seed,
            logits_processor=self._rt._lib.LogitsProcessorList([recorder]),
        )
        schema = (
            tool_reply_schema(specs, max_calls=c.max_tool_calls, answer_schema=json_schema) if specs else json_schema
        )
        kwargs["repeat_penalty"] = c.repeat_penalty if schema is None else 1.0
        if schema is not None:
            try:
                kwargs["grammar"] = self._rt._lib.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            except Exception as e:  # the converter raises bare Exceptions/ValueErrors on schemas it cannot express
                raise BadRequest(
                    f"json_schema/tools: llama.cpp cannot build a grammar from the schema: {e}", provider=PROVIDER
                ) from e
        return kwargs

    def _prepared(self) -> Any:
        """The model, its context emptied unless prefix reuse is on, its threads fitted; call with the lock held."""
        llama = self._rt.llama
        if not self.config.prefix_cache:
            llama.reset()
        self._rt.fit_threads()
        return llama

    def _run(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        with self._rt.lock:
            llama = self._prepared()
            try:
                return llama.create_chat_completion(**kwargs)
            except (ValueError, RuntimeError) as e:
                raise _translate(e) from e

    async def _complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
    ) -> Reply:
        specs = tool_specs(tools) if tools else None
        recorder = _TokenRecorder(logprobs=self.config.logprobs)
        kwargs = self._request(messages, max_tokens, specs, json_schema, recorder)
        out = await asyncio.to_thread(self._run, kwargs)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return self._reply(
            choice["message"].get("content") or "",
            choice.get("finish_reason"),
            Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            specs,
            recorder,
        )

    def _reply(
        self, text: str, finish: str | None, usage: Usage, specs: list[ToolSpec] | None, recorder: _TokenRecorder
    ) -> Reply:
        stop: StopReason = _FINISH.get(finish or "", "unknown")
        metadata: dict[str, Any] = {"n_gpu_layers": self.n_gpu_layers, "n_threads": self._rt.threads_now}
        if self.config.logprobs and recorder.mean() is not None:
            metadata["mean_logprob"] = recorder.mean()
        calls: tuple[ToolCall, ...] = ()
        if specs:
            try:
                parsed = json.loads(text, strict=False)  # byte-level vocabularies can emit raw control characters
            except ValueError as e:
                # Only a length cut can leave grammar-constrained output unparseable.
                metadata["parse_error"] = f"tool reply is not complete JSON ({e}); raise max_tokens"
                return Reply(
                    text=text,
                    model=self.id,
                    usage=usage,
                    stop_reason="length" if stop == "length" else "error",
                    metadata=metadata,
                )
            if "tool_calls" in parsed:
                calls = tuple(
                    ToolCall(
                        id=f"call_{uuid.uuid4().hex[:12]}",
                        name=c["name"],
                        arguments=json.dumps(c["arguments"], ensure_ascii=False),
                    )
                    for c in parsed["tool_calls"]
                )
                text, stop = "", "tool_calls"
            else:
                answer = parsed.get("answer", "")
                text = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
        return Reply(text=text, model=self.id, usage=usage, stop_reason=stop, tool_calls=calls, metadata=metadata)

    async def _stream(
        self, messages: Sequence[Message], *, max_tokens: int | None, tools: Sequence[ToolSpec] | None
    ) -> AsyncIterator[Delta]:
        if tools:
            # A tool reply is one JSON object; it is only meaningful once complete.
            reply = await self._complete(messages, max_tokens=max_tokens, tools=tools, json_schema=None)
            yield Delta(text=reply.text, tool_calls=reply.tool_calls)
            yield Delta(reply=reply)
            return
        recorder = _TokenRecorder(logprobs=self.config.logprobs)
        kwargs = self._request(messages, max_tokens, None, None, recorder)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancelled = threading.Event()

        def produce() -> None:
            # One thread holds the lock for the whole stream and hands chunks to the event loop.
            try:
                with self._rt.lock:
                    llama = self._prepared()
                    chunks = llama.create_chat_completion(stream=True, **kwargs)
                    try:
                        for chunk in chunks:
                            loop.call_soon_threadsafe(queue.put_nowait, ("chunk", chunk))
                            if cancelled.is_set():
                                break
                    finally:
                        chunks.close()
                    in_context = llama.n_tokens
                loop.call_soon_threadsafe(queue.put_nowait, ("end", in_context))
            except (ValueError, RuntimeError) as e:
                loop.call_soon_threadsafe(queue.put_nowait, ("error", _translate(e)))
            except BaseException as e:  # surfaced in the consumer, not lost in the worker thread
                loop.call_soon_threadsafe(queue.put_nowait, ("error", e))

        worker = asyncio.ensure_future(asyncio.to_thread(produce))
        parts: list[str] = []
        finish: str | None = None
        in_context = 0
        try:
            while True:
                kind, item = await queue.get()
                if kind == "error":
                    raise item
                if kind == "end":
                    in_context = item
                    break
                choice = item["choices"][0]
                piece = choice.get("delta", {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
                if piece:
                    parts.append(piece)
                    yield Delta(text=piece)
            # Streams carry no usage: the sampler saw every output token, and the context holds prompt + all
            # output tokens but the last sampled one (an end-of-turn token, or the token a length cut left unread).
            output = recorder.steps - 1 if finish == "stop" else recorder.steps
            usage = Usage(max(0, in_context - max(0, recorder.steps - 1)), max(0, output))
            yield Delta(reply=self._reply("".join(parts), finish, usage, None, recorder))
        finally:
            cancelled.set()
            await asyncio.shield(worker)


class LlamaCppEmbedderConfig(LlamaCppModelConfig):
    """A GGUF model used for embeddings (mean-pooled by default)."""

    model: str = Field(
        TEST_GGUF,
        min_length=1,
        max_length=4096,
        description="Known model name or path to a .gguf file; the default is the small test chat model.",
    )
    n_ctx: int = Field(512, ge=64, le=1_048_576, description="Longest text in tokens; longer texts are truncated.")
    max_batch: int = Field(32, ge=1, le=4096, description="Texts per call to llama.cpp.")
    pooling: Literal["mean", "cls", "last", "model"] = Field(
        "mean", description="How token vectors become one; model = GGUF's own."
    )
    normalize: bool = Field(True, description="Scale vectors to unit length.")


class LlamaCppEmbedder(BaseEmbedder):
    """Embeddings from a local GGUF model; ``dim`` is the model's embedding width."""

    Config = LlamaCppEmbedderConfig

    def __init__(
        self,
        config: LlamaCppEmbedderConfig | None = None,
        *,
        retry: RetryPolicy | None = None,
        gpu_probe: Callable[[], bool] = gpu_visible,
        load_probe: Callable[[], int | None] = runnable_elsewhere,
    ) -> None:
        super().__init__(retry=retry)
        self.config = config or LlamaCppEmbedderConfig()
        lib = _llama_cpp()
        pooling = {
            "mean": lib.LLAMA_POOLING_TYPE_MEAN,
            "cls": lib.LLAMA_POOLING_TYPE_CLS,
            "last": lib.LLAMA_POOLING_TYPE_LAST,
            "model": None,
        }[self.config.pooling]
        self._rt = _Runtime(self.config, embedding=True, pooling=pooling, gpu_probe=gpu_probe, load_probe=load_probe)
        self.id = f"{PROVIDER}:{self._rt.path.stem}:{self.config.pooling}"
        self.max_batch = self.config.max_batch

    @classmethod
    def from_config(cls, config: LlamaCppEmbedderConfig | Mapping[str, Any], **collaborators: Any) -> LlamaCppEmbedder:
        probes = {k: collaborators[k] for k in ("gpu_probe", "load_probe") if k in collaborators}
        return cls(
            config if isinstance(config, cls.Config) else cls.Config.model_validate(config),
            retry=collaborators.get("retry"),
            **probes,
        )

    def __repr__(self) -> str:
        return f"LlamaCppEmbedder(model={self.config.model!r}, pooling={self.config.pooling!r})"

    @property
    def dim(self) -> int:  # type: ignore[override]
        return int(self._rt.llama.n_embd())

    def _embed_locked(self, texts: list[str]) -> list[list[float]]:
        with self._rt.lock:
            _ = self._rt.llama
            self._rt.fit_threads()
            try:
                vectors = self._rt.llama.embed(texts, normalize=self.config.normalize, truncate=True)
            except (ValueError, RuntimeError) as e:
                raise _translate(e) from e
        if vectors and vectors[0] and isinstance(vectors[0][0], list):
            raise ConfigError(f"{self._rt.path.name} returns per-token vectors; set pooling to mean, cls or last")
        return [list(map(float, v)) for v in vectors]

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self._embed_locked, list(texts))


__all__ = [
    "LlamaCppGenerator",
    "LlamaCppEmbedder",
    "LlamaCppModelConfig",
    "LlamaCppConfig",
    "LlamaCppEmbedderConfig",
    "choose_gpu_layers",
    "choose_threads",
    "gpu_visible",
    "runnable_elsewhere",
    "usable_cpus",
    "OPENMP_DEFAULTS",
    "tool_reply_schema",
    "tool_prompt",
    "chat_messages",
    "CUDA_BUILD_HINT",
]
