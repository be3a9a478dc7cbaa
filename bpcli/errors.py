"""The one exception type for bad input, and how it reads.

Everything a user can get wrong (spec, data file, command-line value) raises
:class:`InputError`. It carries where the problem is (file, line, column, key
path) so that the message names the culprit; the CLI turns it into exit code 2
in one place.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input: a spec, a data file or an option the user gave.

    ``str(err)`` reads ``file:line:column: key.path: message``, leaving out the
    parts that are unknown.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.errors = [self]  # every problem found: several when bpcli validate collects them all

    @classmethod
    def several(cls, errors: list[InputError]) -> InputError:
        """One error standing for ``errors`` (at least one); ``str()`` shows one per line."""
        if len(errors) == 1:
            return errors[0]
        combined = cls("\n".join(str(e) for e in errors))
        combined.errors = list(errors)
        return combined

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        # a key path with a control character in it (a YAML key "\n") is shown quoted
        shown = self.path if not self.path or self.path.isprintable() else repr(self.path)
        path = f"{shown}: " if self.path else ""
        return f"{where}{path}{self.message}"


class CheckFailed(Exception):
    """A check ran and said no: gradcheck failed, training diverged (exit code 1)."""


class Interrupted(Exception):
    """Stopped by SIGINT or SIGTERM after saving a checkpoint (exit code 130)."""
