"""Printing for humans, verbatim: the one way the CLI writes to a terminal.

What the CLI prints comes from databases, models, users and files: a value ``Legal [/b] :x:``
must print as those characters. Rich would read ``[red]``/``[/b]`` as markup (styling the rest,
or raising ``MarkupError`` on a closing tag with nothing open) and ``:x:`` as an emoji code, and
a terminal obeys ANSI escapes, carriage returns and bidi overrides. So every human-facing line
goes through here:

- :func:`console` is a Rich console with markup, emoji codes and highlighting off, so even a
  plain string is printed as it is;
- :func:`text` and :func:`line` build Rich :class:`~rich.text.Text` (never parsed for markup)
  from values whose control characters :func:`clean` has escaped the way Python writes them
  (``\\x1b``, ``\\r``, ``\\u202e``; newlines and tabs too, except in multi-line text);
- :func:`table` makes tables whose cells fold rather than get cut with an ellipsis;
- :func:`echo` is :func:`click.echo` of cleaned text, for plain lines and errors.

``--json`` output is not printed through here: JSON escapes what it must by itself.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["clean", "console", "echo", "line", "table", "text"]

#: Format characters that reorder or hide text on a terminal (bidi embeddings, overrides and
#: isolates, and the line/paragraph separators); escaped like control characters.
_INVISIBLE = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def clean(value: object, *, multiline: bool = False) -> str:
    """``str(value)`` with every control character escaped (``\\x1b``, ``\\r``, ``\\u202e``).

    With ``multiline`` newlines and tabs are kept (SQL, error messages); otherwise they are
    escaped too, so a value stays on its line (table cells, names, paths). Everything else,
    backslashes included, is left as it is.
    """
    string = value if isinstance(value, str) else str(value)
    if string.isprintable():  # the common case: nothing to escape
        return string
    out = []
    for ch in string:
        if multiline and ch in "\n\t":
            out.append(ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif ch in _INVISIBLE or unicodedata.category(ch) == "Cc":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def text(value: object, style: str = "", *, multiline: bool = False) -> Text:
    """``value`` as Rich text, verbatim (see :func:`clean`), in ``style``."""
    return Text(clean(value, multiline=multiline), style=style)


def line(*parts: object | tuple[object, str], multiline: bool = False) -> Text:
    """One line from parts, each a value or a ``(value, style)`` pair, printed verbatim
    (newlines escaped unless ``multiline``)."""
    out = Text()
    for part in parts:
        value, style = part if isinstance(part, tuple) else (part, "")
        out.append(clean(value, multiline=multiline), style=style)
    return out


def table(
    *columns: str,
    title: object = None,
    right: Collection[str] = (),
    no_wrap: Collection[str] = (),
) -> Table:
    """A table with verbatim title and headers, whose cells fold rather than lose characters
    to an ellipsis when the terminal is narrow; ``right`` names right-aligned columns,
    ``no_wrap`` columns kept whole (they get their widest cell's width first). Add rows of
    :func:`text`."""
    out = Table(title=None if title is None else text(title))
    for column in columns:
        out.add_column(
            text(column),
            overflow="fold",
            justify="right" if column in right else "left",
            no_wrap=column in no_wrap,
        )
    return out


def console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """A console that prints strings as they are: no markup, no emoji codes, no highlighting,
    and no line breaks of its own in long lines (``soft_wrap``), so SQL copies back intact."""
    return Console(
        stderr=stderr,
        quiet=quiet,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=True,
    )


def echo(message: object, *, err: bool = False) -> None:
    """:func:`click.echo` of ``message`` with its control characters escaped (newlines kept)."""
    click.echo(clean(message, multiline=True), err=err)
