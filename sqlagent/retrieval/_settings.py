"""RetrievalSettings: the one set of retrieval knobs (the ``retrieval:`` section of a config)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

import pydantic

from sqlagent.settings import ConfigModel

__all__ = ["RetrievalSettings", "STATE_DIR"]

#: The folder of sqlagent's own files (retrieval index, embedder exports) beside a config file.
STATE_DIR = ".sqlagent"


class RetrievalSettings(ConfigModel):
    """Schema retrieval: which embedder and store, and how much to retrieve and how to rank it.

    The agent reads it from the ``retrieval:`` section of its config file; a
    :class:`~sqlagent.retrieval.RetrievalIndex` or
    :class:`~sqlagent.retrieval.SchemaRetriever` built in code takes it as ``config=``.

    ``embedder``/``store`` ``"auto"`` use MiniLM and chromadb when the ``retrieval`` extra is
    installed, and the dependency-free fallbacks otherwise. MiniLM (``auto`` or ``minilm``) runs
    through onnxruntime from an ONNX export kept in ``embedder_path`` (made once by ``sqlagent
    index``, or on first use, where torch is installed), so a question is answered without
    importing torch; without onnxruntime, or without both the export and torch, through
    sentence-transformers. ``path`` (the chromadb folder) and ``embedder_path`` default to
    ``.sqlagent/index`` and ``.sqlagent/embedders`` beside the config file (in the current
    directory for a configuration not read from a file): see :meth:`index_dir` and
    :meth:`embedder_dir`. ``url`` names a chroma server (``http://host:port``) instead of a
    folder. ``threads`` caps onnxruntime's threads for the embedder (default: one per core).

    ``k_tables`` tables are ranked per question (plus foreign-key bridges when
    ``expand_foreign_keys``, at most ``max_hops`` intermediate tables per join path);
    ``k_examples`` and ``k_docs`` are how many example pairs and note chunks come along. A
    table's score is its embedding similarity plus ``lexical_weight`` times the share of the
    question's schema words that name it or its columns, plus ``neighbour_weight`` times the
    best score among the tables it joins with. ``candidates`` is how many table vectors are
    asked of the store per question. ``column_documents`` adds one document per column (their
    best similarity counts with ``column_weight``).
    """

    config_name: ClassVar[str] = "retrieval settings"

    enabled: bool = True
    embedder: Literal["auto", "minilm", "hashing"] = "auto"
    store: Literal["auto", "chroma", "memory"] = "auto"
    path: Path | None = None  # chromadb directory; default: .sqlagent/index beside the config
    embedder_path: Path | None = None  # ONNX exports; default: .sqlagent/embedders beside it
    url: str | None = None  # a chroma server (http://host:port) instead of a directory
    threads: int | None = pydantic.Field(default=None, ge=1, le=256)
    k_tables: int = pydantic.Field(default=5, ge=1, le=100)
    k_examples: int = pydantic.Field(default=3, ge=0, le=20)
    k_docs: int = pydantic.Field(default=2, ge=0, le=20)
    expand_foreign_keys: bool = True
    max_hops: int = pydantic.Field(default=2, ge=0, le=10)
    column_documents: bool = False
    candidates: int = pydantic.Field(default=50, ge=1)
    lexical_weight: float = pydantic.Field(default=0.3, ge=0)
    neighbour_weight: float = pydantic.Field(default=0.15, ge=0)
    column_weight: float = pydantic.Field(default=0.5, ge=0)

    def index_dir(self) -> Path:
        """The chromadb folder: ``path``, else ``.sqlagent/index`` (beside the config file once
        :meth:`resolve_paths` ran, as ``from_file`` does; relative to the current directory
        otherwise)."""
        return self.path if self.path is not None else Path(STATE_DIR) / "index"

    def embedder_dir(self) -> Path:
        """Where ONNX exports of the embedder are kept: ``embedder_path``, else
        ``.sqlagent/embedders`` (resolved like :meth:`index_dir`)."""
        return (
            self.embedder_path if self.embedder_path is not None else Path(STATE_DIR) / "embedders"
        )

    def resolve_paths(self, base_dir: Path) -> Self:
        """Relative paths resolved against ``base_dir`` (the config file's folder), the
        defaults (``.sqlagent/...``) too."""

        def under(path: Path | None, default: str) -> Path:
            path = path if path is not None else Path(STATE_DIR) / default
            return path if path.is_absolute() else base_dir / path

        return self.model_copy(
            update={
                "path": under(self.path, "index"),
                "embedder_path": under(self.embedder_path, "embedders"),
            }
        )
