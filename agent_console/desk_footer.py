"""The desk's footer: a key is shown whole or not at all (issue 21).

Textual's :class:`~textual.widgets.Footer` lays its keys in a row and lets the last ones
run under the "more keys" key docked at its right, which cut labels mid-word at 80
columns ("k Con", "f Fi"). This footer shows the keys, in the bindings' order, as far as
they fit whole beside the "more keys" key and hides the rest; every desk key is in the palette
(:mod:`agent_console.desk_palette`), so a hidden key is one key away. A screen whose own
keys are in no palette (the customer search) uses the compact style (one column between
keys, not two) so that all of them fit at 80 columns.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

__all__ = ["DeskFooter", "FooterKey", "key_width"]


def key_width(key: FooterKey) -> int:
    """The columns ``key`` takes in the row: its text, padding, border and margins."""
    styles = key.styles
    return cell_len(key.render().plain) + styles.gutter.width + styles.margin.width


class DeskFooter(Footer):
    """A footer whose keys are whole: those with no room are hidden, not cut."""

    def __init__(self, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(compact=compact, id=id)

    async def recompose(self) -> None:
        await super().recompose()
        self.fit_keys()

    def on_resize(self, _event: events.Resize) -> None:
        self.fit_keys()

    def fit_keys(self) -> None:
        """Show the keys, in the bindings' order, up to the first that does not fit whole
        left of "more keys"; hide it and the rest (a shorter key after it would put the
        keys out of their order: Cancel shown, Hand over not)."""
        keys = list(self.query_children(FooterKey))
        more = [key for key in keys if key.has_class("-command-palette")]
        room = self.size.width - sum(key_width(key) for key in more)
        for key in keys:
            if key in more:
                continue
            room -= key_width(key)
            key.display = room >= 0
