"""Calibration profiles: measured scenario defaults for one machine, applied as overrides.

A profile is a TOML file written by ``flashsim calibrate``::

    [profile]   name, date, the command that measured it
    [machine]   hostname, cpu, cores, load average while measuring
    [versions]  python, flashsim, redis, mariadb
    [scenario]  dotted scenario keys -> values derived from the measurements
                ("network.redis" = 2.5e-05, "redis.service.deduct" = {kind = "lognormal", ...})
    [measured]  dotted keys this flashsim's scenario may not know yet (applied once it does)
    [raw]       the raw measurements the values were derived from

:meth:`Profile.apply` applies ``[scenario]`` and ``[measured]`` to a scenario,
before any ``--set``. A key the scenario does not know is skipped and
reported; a value the scenario refuses is a :class:`ScenarioError` naming the
profile and the key. :func:`dumps` writes the TOML (a small writer for the
shapes a profile holds: tables, numbers, text, booleans, lists, inline tables).
Nothing here touches a server; the only I/O is reading the profile file.
"""

from __future__ import annotations

import json
import math
import tomllib
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from engine.fields import ScenarioError
from engine.scenario import Scenario

APPLIED = ("scenario", "measured")
"""The tables of a profile that hold scenario overrides, in the order they are applied."""


@dataclass(frozen=True)
class Profile:
    """A loaded profile: where it came from and the overrides it carries."""

    name: str
    source: str
    scenario: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict, repr=False)  # the whole file

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> Profile:
        """Check the shape of a parsed profile (values are checked when applied)."""
        head = data.get("profile", {})
        if not isinstance(head, dict):
            raise ScenarioError(f"profile {source}: [profile] must be a table")
        tables = {}
        for table in APPLIED:
            value = data.get(table, {})
            if not isinstance(value, dict):
                raise ScenarioError(f"profile {source}: [{table}] must be a table of dotted keys")
            tables[table] = dict(_flatten(value))
        return cls(str(head.get("name", Path(source).stem)), source, tables["scenario"], tables["measured"], data)

    def overrides(self) -> dict[str, Any]:
        """Every dotted key -> value the profile sets ([measured] after [scenario])."""
        return {**self.scenario, **self.measured}

    def apply(self, scenario: Scenario) -> tuple[Scenario, list[str]]:
        """``scenario`` with the profile's values; and the keys skipped because the scenario does not know them."""
        skipped = []
        for key, value in self.overrides().items():
            if not known_key(key):
                skipped.append(key)
                continue
            try:
                scenario = scenario.with_overrides([f"{key}={toml_value(value)}"])
            except ScenarioError as err:
                raise ScenarioError(f"profile {self.name} ({self.source}): {key}: {err}") from None
        return scenario, skipped


def load_profile(ref: str | Path, search: Sequence[Path] = ()) -> Profile:
    """A profile by path, or by name: ``<dir>/<name>.toml`` in the first of ``search`` that has it."""
    path = Path(ref)
    if path.suffix == ".toml" or len(path.parts) > 1:  # a path
        if not path.is_file():
            raise ScenarioError(f"profile file not found: {path}")
    else:
        found = [Path(d) / f"{ref}.toml" for d in search if (Path(d) / f"{ref}.toml").is_file()]
        if not found:
            names = sorted({p.stem for d in search if Path(d).is_dir() for p in Path(d).glob("*.toml")})
            raise ScenarioError(f"unknown profile {str(ref)!r}; known: {', '.join(names) or 'none'} "
                                f"(or give a path to a .toml file)")
        path = found[0]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError(f"cannot read profile {path}: {err.__class__.__name__}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"profile {path}: malformed TOML: {err}") from None
    return Profile.from_dict(data, str(path))


def known_key(key: str) -> bool:
    """Whether ``key`` names a scenario field (or an entry of a table field such as ``redis.service``)."""
    cls: Any = Scenario
    parts = key.split(".")
    for i, part in enumerate(parts):
        if typing.get_origin(cls) is dict:
            cls = typing.get_args(cls)[1]
            continue
        if not (isinstance(cls, type) and is_dataclass(cls)):
            return False
        if cls.__name__ in ("Dist", "Qty", "Wake") and i > 0:  # a value given as a table: only as a whole
            return False
        if part not in {f.name for f in fields(cls)}:
            return False
        cls = typing.get_type_hints(cls)[part]
    return True


def _flatten(table: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` and ``{"a.b": 1}`` both give ``("a.b", 1)``; a leaf table whose
    keys are a Dist's (kind/mean/cv) or a Qty's (low/high) stays one value."""
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not _is_value_table(value):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _is_value_table(value: dict[str, Any]) -> bool:
    return (set(value) <= {"kind", "mean", "cv"} or set(value) <= {"low", "high"}
            or set(value) <= {"after", "base", "per_idle", "cap"})


# ---------------------------------------------------------------- TOML writing
def toml_value(value: Any) -> str:
    """One value as a TOML literal (inline tables for dicts): profiles, sweep points and ``--set``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ScenarioError(f"cannot write {value!r} as a TOML value")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else toml_value(key)


def dumps(data: dict[str, Any], comments: dict[str, str] | None = None) -> str:
    """A profile (nested dicts) as TOML: top-level tables, sub-tables as ``[a.b]``.

    Inside ``[scenario]`` and ``[measured]`` every entry stays one dotted key with an
    inline value. ``comments`` adds a ``# line`` above the named top-level tables.
    """
    comments = comments or {}
    out: list[str] = []

    def table(name: str, body: dict[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if name in APPLIED or not isinstance(v, dict)}
        nested = {k: v for k, v in body.items() if k not in scalars}
        if out:
            out.append("")
        if name in comments:
            out.append(f"# {comments[name]}")
        out.append(f"[{name}]")
        out.extend(f"{_key(k)} = {toml_value(v)}" for k, v in scalars.items())
        for key, value in nested.items():
            table(f"{name}.{_key(key)}", value)

    for name, body in data.items():
        if not isinstance(body, dict):
            raise ScenarioError(f"profile: top-level {name!r} must be a table")
        table(name, body)
    return "\n".join(out) + "\n"
