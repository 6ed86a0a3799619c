"""Catalogs: the real tables and columns a statement is grounded against.

:func:`reflect_catalog` reads one from a database; :class:`CatalogSource` keeps it for reuse and
refreshes it; :func:`sample_values` adds a few real values of the low-cardinality text columns a
role may read in clear (never of masked or denied columns), for prompts.
"""

from sqlagent.catalog._model import Catalog, Column, ForeignKey, Table
from sqlagent.catalog._reflect import reflect_catalog
from sqlagent.catalog._sample import (
    Grants,
    SampleOptions,
    all_columns,
    is_text_type,
    sample_values,
)
from sqlagent.catalog._source import CatalogSource

__all__ = [
    "Catalog",
    "CatalogSource",
    "Column",
    "ForeignKey",
    "Grants",
    "SampleOptions",
    "Table",
    "all_columns",
    "is_text_type",
    "reflect_catalog",
    "sample_values",
]
