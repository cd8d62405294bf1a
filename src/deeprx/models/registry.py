"""The registry of model presets (timm's ``_registry.py`` in small): a leaf that model files register into.

A preset is a function ``(n_rx, bits_per_symbol, in_channels) -> DeepRx`` registered under its own name by
:func:`register_model`; :func:`create_model` builds one by name. The package ``deeprx.models`` imports every model
file, so the registry is complete once ``deeprx.models`` is imported (any import of this module does that first).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

PRESETS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` as the preset named ``fn.__name__``."""
    PRESETS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(PRESETS)


def is_model(name: str) -> bool:
    return name in PRESETS


def create_model(name: str, n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> nn.Module:
    """Build a registered preset (``in_channels`` 0: the paper's input); ``KeyError`` names the known presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}: known presets are {list_models()}")
    return PRESETS[name](n_rx=n_rx, bits_per_symbol=bits_per_symbol, in_channels=in_channels)
