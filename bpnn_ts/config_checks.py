"""Checks shared by the YAML configs (training, active learning): a ConfigError naming the key."""

from typing import Any, Dict, Literal, Union, overload

from .errors import ConfigError


def require(condition: bool, message: str) -> None:
    """A ConfigError with `message` unless `condition`."""
    if not condition:
        raise ConfigError(message)


@overload
def number(section: Dict[str, Any], key: str, default: float, where: str, minimum: float = ..., *,
           integer: Literal[True], strictly_positive: bool = ...) -> int: ...


@overload
def number(section: Dict[str, Any], key: str, default: float, where: str, minimum: float = ...,
           integer: Literal[False] = ..., strictly_positive: bool = ...) -> float: ...


def number(section: Dict[str, Any], key: str, default: float, where: str, minimum: float = 0.0,
           integer: bool = False, strictly_positive: bool = False) -> Union[int, float]:
    """`section[key]` (or `default`), a number (`integer`: an int) >= `minimum` (> with
    `strictly_positive`); the error names `where.key`."""
    value = section.get(key, default)
    kind = int if integer else (int, float)
    require(isinstance(value, kind) and not isinstance(value, bool),
            f"`{where}.{key}` must be {'an integer' if integer else 'a number'}, got {value!r}")
    require(value > minimum if strictly_positive else value >= minimum,
            f"`{where}.{key}` must be {'>' if strictly_positive else '>='} {minimum}, got {value!r}")
    return int(value) if integer else float(value)
