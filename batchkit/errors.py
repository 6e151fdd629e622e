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


class ExpiredCredentialsError(CredentialsError):
    """The credentials were accepted once but are no longer: an expired session token,
    an expired SSO login, or keys AWS no longer recognises.

    Retrying cannot help: the message names the profile and how to renew it, and a kill
    that meets it stops at once, leaving what it had not finished pending in the ledger.
    """

    def __init__(
        self, message: str, *, operation: str | None = None, code: str | None = None,
        profile: str | None = None,
    ) -> None:
        self.profile = profile
        super().__init__(message, operation=operation, code=code)


#: Error codes AWS answers for credentials that stopped working: STS/SSO session tokens
#: past their expiry (ExpiredToken, ExpiredTokenException), keys or tokens AWS does not
#: recognise (UnrecognizedClientException — what Batch answers for a dead session token —
#: and InvalidClientTokenId), per the AWS "Common Errors" API reference.
EXPIRED_CREDENTIAL_CODES: frozenset[str] = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "RequestExpired",
    }
)

#: Error codes of a missing IAM permission.
ACCESS_DENIED_CODES: frozenset[str] = frozenset(
    {"AccessDeniedException", "AccessDenied", "UnauthorizedException", "UnauthorizedOperation"}
)


def renew_hint(profile: str | None) -> str:
    """How to get working credentials again, for ``profile`` (None: the default chain)."""
    if profile:
        return (
            f"renew them with `aws sso login --profile {profile}` (SSO), or put fresh keys or a "
            f"fresh session token in profile '{profile}', then run the command again"
        )
    return (
        "renew them with `aws sso login` (SSO; add --profile NAME for a named profile), or "
        "export fresh AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, then run "
        "the command again"
    )


def expired_credentials(
    operation: str, code: str, detail: str, profile: str | None
) -> ExpiredCredentialsError:
    """The one message for credentials that died: which profile, why, how to renew."""
    who = f"profile '{profile}'" if profile else "the default credential chain"
    return ExpiredCredentialsError(
        f"AWS credentials from {who} are expired or no longer valid ({code} on {operation}"
        f"{': ' + detail if detail else ''}); {renew_hint(profile)}",
        operation=operation,
        code=code,
        profile=profile,
    )


def access_denied(operation: str, code: str, detail: str, actions: tuple[str, ...]) -> AccessDeniedError:
    """A missing permission: names the IAM action(s) to add."""
    names = " and ".join(f"batch:{a}" for a in actions)
    return AccessDeniedError(
        f"AWS Batch refused {operation}: {code}{': ' + detail if detail else ''} — add {names} "
        "to the role's (or user's) IAM policy",
        operation=operation,
        code=code,
    )
