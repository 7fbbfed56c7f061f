"""Channels: the named vectors of a point, one registry. A channel is declared once (engine.channels.
base.Channel: its vector, how ingest and queries encode it, its mode and label) and registered here;
ingest, search, the search modes, weights and the pages all read this registry."""

from __future__ import annotations

from engine.channels.base import Channel, TextChannel, Vector
from engine.channels.builtin import BUILTIN, IMAGE_OFF_NOTE
from engine.errors import SearchError
from engine.schema import HYBRID_MODE

_CHANNELS: dict[str, Channel] = {}


def register(channel: Channel) -> None:
    """Add a channel (after the others); its name and mode must be new."""
    taken_modes = {HYBRID_MODE, *(c.mode for c in _CHANNELS.values())}
    if channel.name in _CHANNELS or channel.mode in taken_modes:
        raise ValueError(f"channel {channel.name} (mode {channel.mode}) is registered already")
    _CHANNELS[channel.name] = channel


def unregister(name: str) -> None:
    """Remove a channel (plug-in tests clean up with it)."""
    _CHANNELS.pop(name, None)


def all_channels() -> list[Channel]:
    """Every registered channel, built-ins first."""
    return list(_CHANNELS.values())


def channel(name: str) -> Channel:
    """The channel called `name`; SearchError naming the known ones."""
    if name not in _CHANNELS:
        raise SearchError(f"unknown channel '{name}': known {', '.join(_CHANNELS)}")
    return _CHANNELS[name]


def fused_names() -> tuple[str, ...]:
    """The channels hybrid search fuses, in order (weights name these)."""
    return tuple(c.name for c in _CHANNELS.values() if c.fused)


def modes() -> dict[str, tuple[str, ...]]:
    """Search modes and the channels each searches: hybrid (the fused ones), then one per channel."""
    return {HYBRID_MODE: fused_names(), **{c.mode: (c.name,) for c in _CHANNELS.values()}}


def text_modes() -> list[str]:
    """The modes a text query can use (not those that need a query image)."""
    return [m for m, names in modes().items() if not any(_CHANNELS[n].image_only for n in names)]


def dims(encoders) -> dict[str, int]:
    """The dense vector size of every channel these encoders can fill (a collection's layout)."""
    sizes = {c.name: c.dim(encoders) for c in _CHANNELS.values() if not c.sparse}
    return {name: size for name, size in sizes.items() if size is not None}


for _builtin in BUILTIN:
    register(_builtin)

__all__ = [
    "BUILTIN", "IMAGE_OFF_NOTE", "Channel", "TextChannel", "Vector", "all_channels", "channel", "dims",
    "fused_names", "modes", "register", "text_modes", "unregister",
]  # fmt: skip
