"""Tools: typed Python functions as model tools, run concurrently, and the tool-calling loop."""

from ragkit.tools.function import FunctionTool, ToolConfig, tool
from ragkit.tools.toolset import ToolCallRecord, ToolRound, Toolset, ToolsetConfig, retrieval_tool

__all__ = [
    "FunctionTool",
    "ToolCallRecord",
    "ToolConfig",
    "ToolRound",
    "Toolset",
    "ToolsetConfig",
    "retrieval_tool",
    "tool",
]
