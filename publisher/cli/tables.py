"""Tables that fit the terminal (80 columns when piped): a slug is never cut or wrapped; other columns give way
first, in a fixed order: a compact form (a date without seconds or offset), then an ellipsis, then the column
itself. ``--wide`` prints every column whole, however long its lines.

rich is imported inside the functions: ``publisher --help`` must stay fast (tests/test_cli.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class Column:
    """One column: ``whole`` never shortened (slugs); otherwise shortened down to ``min_width`` with an
    ellipsis, and dropped (lowest ``drop`` first, 0 = never) when even that does not fit. Columns that may be
    dropped are also the first shortened, in the same order."""

    header: str
    whole: bool = False
    min_width: int = 6
    drop: int = 0
    justify: str = "left"


@dataclass(frozen=True)
class Short:
    """A cell with a compact form, used when its column must give way (``2024-06-28 09:00`` for
    ``2024-06-28T09:00:00+09:00``)."""

    full: str
    short: str

    def __str__(self) -> str:
        return self.full


Cell = Any   # str, rich Text, or Short


def _text(cell: Cell, short: bool) -> Any:
    if isinstance(cell, Short):
        return cell.short if short else cell.full
    return cell


def _width(cell: Cell, short: bool = False) -> int:
    from rich.cells import cell_len

    value = _text(cell, short)
    return cell_len(value.plain if hasattr(value, "plain") else str(value))


def overhead(columns: int) -> int:
    """Characters a table's borders and padding take: two spaces between columns (a cell's right padding and
    the divider of ``box.SIMPLE_HEAD``), none at the edges (``show_edge=False``, ``pad_edge=False``)."""
    return max(0, 2 * (columns - 1))


def fit(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int,
        wide: bool = False) -> tuple[list[int], list[int], set[int]]:
    """The columns kept (indexes), their widths, and the columns shown in their compact form."""
    kept = list(range(len(columns)))
    short: set[int] = set()
    natural = [max([_width(columns[i].header), *(_width(row[i]) for row in rows)]) for i in kept]
    widths = list(natural)
    if wide:
        return kept, widths, short

    def total() -> int:
        return sum(widths[i] for i in kept) + overhead(len(kept))

    # 1. compact forms (dates), 2. shorten (the first to be dropped first), 3. drop a column
    for i in kept:
        if total() <= width:
            break
        if any(isinstance(row[i], Short) for row in rows):
            short.add(i)
            widths[i] = max([_width(columns[i].header), *(_width(row[i], True) for row in rows)])
    while total() > width:
        shrinkable = [i for i in kept if not columns[i].whole
                      and widths[i] > max(columns[i].min_width, _width(columns[i].header))]
        if shrinkable:   # the first to be dropped gives way first; then the widest, a character at a time
            widths[min(shrinkable, key=lambda n: (columns[n].drop or len(columns) + 1, -widths[n]))] -= 1
            continue
        droppable = [i for i in kept if columns[i].drop]
        if not droppable:
            break   # only whole columns left: the line is as long as they are
        kept.remove(min(droppable, key=lambda n: columns[n].drop))
        for i in kept:   # room again: give the shortened columns back what they need
            widths[i] = max([_width(columns[i].header), *(_width(row[i], i in short) for row in rows)])
    return kept, widths, short


def fitted_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int, *, wide: bool = False,
                 title: str | None = None, caption: str | None = None,
                 show_header: bool = True) -> tuple[Table, int]:
    """A rich table of ``rows`` that fits ``width`` (see the module docstring), and the width to print it at
    (wider than ``width`` only with ``wide``, or when the whole columns alone need more)."""
    from rich import box
    from rich.table import Table

    kept, widths, short = fit(columns if show_header else [Column("", c.whole, c.min_width, c.drop, c.justify)
                                                            for c in columns], rows, width, wide)
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0), title_justify="left", caption_justify="left", show_header=show_header)
    for i in kept:
        column = columns[i]
        table.add_column(column.header, width=widths[i], no_wrap=True,
                         overflow="ignore" if column.whole or wide else "ellipsis",
                         justify=column.justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(_text(row[i], i in short) for i in kept))
    needed = sum(widths[i] for i in kept) + overhead(len(kept))
    return table, max(width, needed)


def print_table(out: Any, columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *, wide: bool = False,
                title: str | None = None, caption: str | None = None, show_header: bool = True) -> None:
    """Print a fitted table on the rich console ``out`` (its width: the terminal's, or ``COLUMNS``, or 80)."""
    table, width = fitted_table(columns, rows, out.width, wide=wide, title=title, show_header=show_header)
    if width > out.width:   # --wide: rich never prints wider than its console, so a wider one, same file
        from rich.console import Console

        out = Console(file=out.file, width=width, highlight=False, markup=False, soft_wrap=False,
                      force_terminal=out.is_terminal, no_color=out.no_color)
    out.print(table, crop=False)
    if caption:   # under the table, not in it: a caption is wrapped at the table's width
        out.print(caption, style="dim")


__all__ = ["Column", "Short", "fit", "fitted_table", "print_table"]
