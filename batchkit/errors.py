"""batchkit's user-facing errors.

Every message names the file, line, job or queue it is about and says what to do;
the CLI prints ``str(error)`` as one line and exits non-zero, never a traceback.
"""

from __future__ import annotations


class BatchkitError(Exception):
    """Base of every error batchkit raises on purpose."""


class InputError(BatchkitError):
    """Bad input from a file: names the file and the line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class NextflowReadError(InputError):
    """A trace, log or weblog payload that cannot be read."""


class AwsError(BatchkitError):
    """AWS refused or could not answer; the message says which call and what to do."""

    def __init__(self, message: str, *, operation: str | None = None, code: str | None = None) -> None:
        self.operation = operation
        self.code = code
        super().__init__(message)


class CredentialsError(AwsError):
    """No usable AWS credentials were found."""


class NotFoundError(AwsError):
    """A queue, compute environment or job definition that does not exist."""


class ApiUnavailableError(AwsError):
    """The Batch API kept failing until the call's deadline passed."""


class AccessDeniedError(CredentialsError):
    """Credentials work but lack a permission: the message names the IAM action to add.

    A subclass of CredentialsError so code that treats both as "cannot ask AWS" still
    does; code that can tell them apart (the doctor) checks for this one first.
    """
