"""What every report shares: numbers as table cells (``g``, ``cell``, ``plus_minus``),
sector labels, file-name-safe names (``slug``), and matplotlib with the Agg backend
(``pyplot``, imported when a plot is drawn)."""

import numpy as np


def g(value, fmt: str = ".3g") -> str:
    """A number as ``fmt`` (``n/a`` when None or not finite); anything else as ``str``."""
    if value is None:
        return "n/a"
    if isinstance(value, (float, int, np.floating)):
        return format(float(value), fmt) if np.isfinite(value) else "n/a"
    return str(value)


def cell(value) -> str:
    """A table cell: a string as it is, a number through ``g``."""
    return value if isinstance(value, str) else g(value)


def finite(value) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _digits(value, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if finite(value) else "n/a"


def plus_minus(stats) -> str:
    """``mean ± spread`` of a ``{"mean", "spread"}`` (``n/a`` without a mean)."""
    if stats["mean"] is None:
        return "n/a"
    return _digits(stats["mean"]) + (f" ± {_digits(stats['spread'], 2)}" if stats["spread"] is not None else "")


def markdown_table(rows) -> list:
    """Rows of cells (the first the header) as the lines of a markdown table: every
    ``|`` inside a cell escaped, so each row renders with as many cells as the header."""
    cells = [[str(c).replace("\\|", "|").replace("|", "\\|") for c in row] for row in rows]
    return (["| " + " | ".join(cells[0]) + " |", "|---" * len(cells[0]) + "|"]
            + ["| " + " | ".join(row) + " |" for row in cells[1:]])


def sector_label(sector) -> str:
    """``(lambda, sigma)`` as ``(1,+)``."""
    lam, sigma = sector
    return f"({lam},{'+' if sigma > 0 else '-'})"


def slug(text: str) -> str:
    """A file-name-safe version of a model or spec name."""
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))
    return keep.strip("_") or "model"


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display)."""
    import matplotlib  # start-up time: matplotlib loads only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg"): the backend is chosen first

    return plt
