"""One error type for bad input, so every entry point can print one line and exit 2."""
from __future__ import annotations

import difflib
from typing import Iterable


class ConfigError(ValueError):
    """Invalid input: names the file, the field, the value and what is allowed."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 value: object = None, allowed: str | None = None):
        self.file, self.field, self.value, self.allowed = file, field, value, allowed
        self.detail = message
        super().__init__(self.line())

    def line(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.field:
            parts.append(f"field '{self.field}'")
        head = ": ".join(parts)
        msg = self.detail
        if self.value is not None:
            msg += f" (got {self.value!r})"
        if self.allowed:
            msg += f"; allowed: {self.allowed}"
        return f"{head}: {msg}" if head else msg

    def __reduce__(self):
        """Keep every field when the error crosses a process boundary (pool and Dask workers)."""
        return (_rebuild, (self.detail, self.file, self.field, self.value, self.allowed))

    def with_file(self, file: str) -> "ConfigError":
        """Attach a file name when the error was raised below the loader."""
        if not self.file:
            self.file = str(file)
            self.args = (self.line(),)
        return self


def _rebuild(detail, file, field, value, allowed) -> ConfigError:
    return ConfigError(detail, file=file, field=field, value=value, allowed=allowed)


def int_arg(minimum: int | None = None):
    """An argparse type: an integer (underscores and commas allowed), at least `minimum`."""
    import argparse
    allowed = "an integer" + (f" >= {minimum}" if minimum is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(str(text).replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}; allowed: {allowed}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"invalid value {value}; allowed: {allowed}")
        return value
    return parse


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A 'did you mean' hint for an unknown key, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""
