"""The ``catalog`` section of a pipeline YAML, as the core sees it: an app section that builds the catalog bot."""

from __future__ import annotations

from typing import Any

from ragkit.apps.catalog.bot import CatalogBot
from ragkit.apps.catalog.catalog import CatalogConfig
from ragkit.config import AppBuild, AppSection


class CatalogSection(CatalogConfig, AppSection):
    """``catalog:`` in a pipeline YAML; registered under the entry-point group ``ragkit.section``."""

    def build(self, config: Any, **rag_kwargs: Any) -> AppBuild:
        """The catalog bot over this pipeline (it indexes the catalog on first use) and its number checker."""
        from ragkit.apps.web_view import ViewingAnswerer

        bot = CatalogBot.from_config(config, **rag_kwargs)
        return AppBuild(ViewingAnswerer(bot), bot.rag, "Product questions", self.licence_note or "", bot.checker)


__all__ = ["CatalogSection"]
