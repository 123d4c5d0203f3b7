"""The tool loop: ask the model, run the tools it calls (concurrently), hand back the results, repeat."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Sequence

from pydantic import ValidationError

from ragkit._aio import run_sync
from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError, ToolLoopExhausted
from ragkit.tools.toolset import ToolCallRecord, Toolset
from ragkit.types import Message, Reply, Usage

log = logging.getLogger("ragkit.tools.loop")


class ToolLoopConfig(ComponentConfig):
    """How many tool rounds a conversation may take."""

    max_rounds: int = Field(8, ge=1, le=100, description="Most rounds of tool calls before the loop gives up.")


class ToolLoop:
    """Runs ``generator`` with ``toolset`` until the model answers without calling tools.

    A round is one model reply that asks for tools plus the execution of those calls. After ``max_rounds``
    rounds the model gets one more turn; if it still asks for tools, ``ToolLoopExhausted`` is raised.
    """

    Config = ToolLoopConfig

    def __init__(self, generator: Any, toolset: Toolset, max_rounds: int = 8) -> None:
        try:
            self.config = ToolLoopConfig(max_rounds=max_rounds)
        except ValidationError as e:
            raise ConfigError(
                f"ToolLoop max_rounds: {e.errors(include_url=False)[0]['msg']}, got {max_rounds!r}"
            ) from e
        self.generator = generator
        self.toolset = toolset

    @classmethod
    def from_config(cls, config: ToolLoopConfig, *, generator: Any, toolset: Toolset, **_: Any) -> ToolLoop:
        return cls(generator, toolset, max_rounds=config.max_rounds)

    @property
    def max_rounds(self) -> int:
        return self.config.max_rounds

    async def run(self, messages: Sequence[Message], max_tokens: int | None = None) -> Reply:
        """The model's final reply; ``metadata["tool_calls"]`` holds a record per call, usage is summed."""
        transcript = list(messages)
        records: list[ToolCallRecord] = []
        usage = Usage()
        specs = self.toolset.specs
        for round_no in range(self.max_rounds + 1):
            reply = await self.generator.generate(transcript, max_tokens=max_tokens, tools=specs)
            usage = usage + reply.usage
            if not reply.tool_calls:
                metadata = {**reply.metadata, "tool_calls": records, "tool_rounds": round_no}
                return dataclasses.replace(reply, usage=usage, metadata=metadata)
            if round_no == self.max_rounds:
                break
            transcript.append(Message(role="assistant", content=reply.text, tool_calls=reply.tool_calls))
            done = await self.toolset.execute(reply.tool_calls)
            transcript.extend(done.messages)
            records.extend(done.records)
            log.debug("tool round %d: %s", round_no + 1, ", ".join(r.name for r in done.records))
        asked = ", ".join(c.name for c in reply.tool_calls)
        raise ToolLoopExhausted(
            f"the model still asked for tools ({asked}) after max_rounds={self.max_rounds} rounds; "
            "raise max_rounds if the task needs more steps, or check that the tools' results answer it",
            transcript=transcript,
            rounds=self.max_rounds,
            records=records,
        )

    def run_sync(self, messages: Sequence[Message], max_tokens: int | None = None) -> Reply:
        """``run`` for scripts."""
        return run_sync(self.run(messages, max_tokens=max_tokens))


__all__ = ["ToolLoop", "ToolLoopConfig"]
