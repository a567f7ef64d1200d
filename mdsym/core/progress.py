"""A progress bar (click's) that shows only where a person watches: on a terminal, or
where asked for explicitly. In a log, nothing is printed before the results or an error."""

import sys


class Progress:
    """``total`` units of work labelled ``label``; fed ``update(n, item)`` or, as an MD
    engine does, ``progress(step, total)``. ``enabled``: True, False, or None (only when
    stderr is a terminal)."""

    def __init__(self, total, label: str, start: int = 0, enabled=None, show_item: bool = False):
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.bar = None
        self.position = start
        if enabled:
            import click  # start-up time: only a shown bar needs it

            self.bar = click.progressbar(length=total, label=label, show_pos=not show_item,
                                         show_eta=True, file=sys.stderr,
                                         item_show_func=(lambda item: item) if show_item else None)
            self.bar.__enter__()
            self.bar.update(start)

    def update(self, n: int, item=None) -> None:
        if self.bar is not None:
            self.bar.update(n, item)
        self.position += n

    def __call__(self, step, total) -> None:
        if step > self.position:
            self.update(step - self.position)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
