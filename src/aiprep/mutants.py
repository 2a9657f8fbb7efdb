"""What generated wrong answers do to a reference function's result (see check_coverage.py).

Each takes the reference function and its arguments. ``zeros`` and ``negated`` map every
number, NumPy array and TensorFlow tensor in the result (through lists, tuples and dicts);
a result with nothing to map (a Keras model, a History) raises ``NotApplicable``, so that
mutant covers nothing rather than passing for a wrong answer that was never made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class NotApplicable(Exception):
    """The mutation has no meaning for this result."""


def zeros(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return _map(fn(*args, **kwargs), lambda a: a * 0)


def negated(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return _map(fn(*args, **kwargs), lambda a: -a)


def identity(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Skip the step: hand back the first argument as it came in."""
    if args:
        return args[0]
    if kwargs:
        return next(iter(kwargs.values()))
    raise NotApplicable("no argument to return")


def untrained(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Skip training: an empty History, the model left as it was built."""
    import tf_keras as keras

    history = keras.callbacks.History()
    history.history, history.epoch = {}, []
    return history


def _map(value: Any, op: Callable[[Any], Any]) -> Any:
    changed = [False]

    def walk(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, int | float | np.number):
            changed[0] = True
            return type(v)(op(v))
        if isinstance(v, np.ndarray) and v.dtype.kind in "iuf":
            changed[0] = True
            return op(v).astype(v.dtype)
        if type(v).__module__.startswith("tensorflow") and hasattr(v, "dtype"):
            import tensorflow as tf

            if v.dtype.is_floating or v.dtype.is_integer:
                changed[0] = True
                return tf.cast(op(tf.convert_to_tensor(v)), v.dtype)
            return v
        if isinstance(v, list | tuple):
            mapped = [walk(x) for x in v]
            return type(v)(*mapped) if hasattr(v, "_fields") else type(v)(mapped)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    out = walk(value)
    if not changed[0]:
        raise NotApplicable(f"nothing to mutate in a {type(value).__name__}")
    return out
