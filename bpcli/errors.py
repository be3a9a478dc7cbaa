"""The one exception type for bad input, and how it reads.

Everything a user can get wrong (spec, data file, command-line value) raises
:class:`InputError`. It carries where the problem is (file, line, column, key
path) so that the message names the culprit; the CLI turns it into exit code 2
in one place. A file bpcli cannot write (a full disk) is :class:`WriteFailed`, exit code 74.
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


class WriteFailed(Exception):
    """A file could not be written: the disk is full, a file size limit (``ulimit -f``) was
    reached, or there is no permission (exit code 74, sysexits' EX_IOERR).

    ``str(err)`` reads ``cannot write FILE: REASON; SPACE free on its disk. TODO``: ``todo``
    says what stands now and what to do (the command that met it fills it in; by default,
    that the files written before it are intact).
    """

    def __init__(self, file, error: OSError, todo: str = "The files written before it are "
                                                           "intact."):
        super().__init__(file, error)
        self.file, self.error, self.todo = str(file), error, todo

    @property
    def reason(self) -> str:
        import errno
        import resource

        e = self.error
        name = errno.errorcode.get(e.errno, "") if e.errno is not None else ""
        why = f"{e.strerror or e} ({name})" if name else str(e.strerror or e)
        if e.errno == errno.EFBIG:
            soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            if soft != resource.RLIM_INFINITY:
                why += f": the file size limit (ulimit -f) is {size(soft)}"
        return why

    def free(self) -> str:
        """The space left on the disk of ``file`` (its nearest folder that exists)."""
        import shutil
        from pathlib import Path

        folder = Path(self.file).absolute().parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            return f"{size(shutil.disk_usage(folder).free)} free on its disk"
        except OSError:
            return "the space left on its disk is unknown"

    def __str__(self) -> str:
        return f"cannot write {self.file}: {self.reason}; {self.free()}. {self.todo}"


def size(n: int) -> str:
    """Bytes as a person reads them: ``512 bytes``, ``1.5 MB`` (powers of 1000, as df -H)."""
    if n < 1000:
        return f"{n} bytes"
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        n /= 1000
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
