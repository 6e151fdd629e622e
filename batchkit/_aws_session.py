"""The boto3 session rules every batchkit AWS client shares (the Batch client and the readers).

One place decides how a profile becomes a session, which region a client talks to, and when
a local emulator gets dummy credentials, so a missing profile or region reads the same
whichever part of batchkit hit it.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from batchkit._net import is_loopback_host
from batchkit.errors import AwsError, CredentialsError

#: What a local emulator is signed with: moto ignores signatures, and these keep botocore
#: from probing the instance metadata service for credentials a Binder user does not have.
DUMMY_CREDENTIALS: Final = {"aws_access_key_id": "batchkit", "aws_secret_access_key": "batchkit"}


def boto3_session(profile: str | None, region: str | None) -> Any:
    """A boto3 session for ``profile`` (None: the default chain); a missing profile is one line."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.session.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as error:
        raise CredentialsError(
            f"AWS profile '{profile}' not found in ~/.aws/config: run `aws configure --profile "
            f"{profile}` or pass another profile",
            code="ProfileNotFound",
        ) from error


def client_region(region: str | None, session: Any, endpoint_url: str | None) -> str:
    """The region a client uses: the one asked for, else the session's; a local endpoint
    without one gets us-east-1 (the emulator does not care). None anywhere is one line."""
    resolved = region or session.region_name or ("us-east-1" if endpoint_url else None)
    if resolved is None:
        raise AwsError(
            "No AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), add a region to your "
            "profile, or pass region=",
            code="NoRegion",
        )
    return str(resolved)


def emulator_credentials(endpoint_url: str | None, profile: str | None) -> dict[str, str]:
    """Dummy credentials for a loopback endpoint when no profile was named, else none."""
    if endpoint_url and profile is None and is_loopback_host(urlsplit(endpoint_url).hostname or ""):
        return dict(DUMMY_CREDENTIALS)
    return {}
