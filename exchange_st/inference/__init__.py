"""Stylization: the `Stylizer` (`stylizer`), tiling, video, and the `exchange-st-stylize` command."""
