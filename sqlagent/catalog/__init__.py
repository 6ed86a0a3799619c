"""Catalogs: the real tables and columns a statement is grounded against."""

from sqlagent.catalog._model import Catalog, Column, ForeignKey, Table
from sqlagent.catalog._reflect import reflect_catalog

__all__ = ["Catalog", "Column", "ForeignKey", "Table", "reflect_catalog"]
