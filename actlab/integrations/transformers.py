"""Hugging Face transformers: name any actlab activation in a config, ``hidden_act="actlab:swish(beta=1.5)"``.

After :func:`register`, transformers' activation table (``ACT2FN``, which every model uses to build its hidden
activation from ``config.hidden_act``) resolves strings that start with ``actlab:`` with :func:`actlab.get`, the
rest of the string in actlab's one syntax (``"actlab:swish(beta=1.5, trainable=True)"``). The string is what
``save_pretrained`` writes to config.json, so ``from_pretrained`` builds the same activation again, and its trained
parameters load with the weights. transformers is imported here only.
"""

from __future__ import annotations

from typing import Any

from actlab.nn import get

PREFIX = "actlab:"


def hidden_act(activation: str) -> str:
    """The config string for an actlab activation: ``hidden_act("gelu")`` -> ``"actlab:gelu"`` (validated)."""
    get(activation)
    return PREFIX + activation


def register() -> None:
    """Teach transformers' ``ACT2FN`` the ``actlab:`` prefix (idempotent). Needs transformers installed."""
    try:
        from transformers import activations
    except ImportError as exc:  # pragma: no cover - the plug-in is only called by users of transformers
        raise ImportError("actlab.integrations.transformers needs transformers: pip install transformers") from exc
    table = activations.ACT2FN
    if getattr(type(table), "_actlab", False):
        return

    base: Any = type(table)

    class WithActlab(base):
        _actlab = True

        def __getitem__(self, key: Any) -> Any:
            if isinstance(key, str) and key.startswith(PREFIX):
                return get(key[len(PREFIX):])
            return super().__getitem__(key)

        def __contains__(self, key: Any) -> bool:
            return (isinstance(key, str) and key.startswith(PREFIX)) or super().__contains__(key)

    table.__class__ = WithActlab
