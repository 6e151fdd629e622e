"""The Batch client and the readers build their boto3 session the same way (batchkit/_aws_session.py):
a missing profile, a missing region and a local emulator read the same from either."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit.aws_readers import make_service_client
from batchkit.client import BatchClient
from batchkit.errors import AwsError, CredentialsError


@pytest.fixture
def no_aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty ~/.aws: no profiles, no region, no credentials from the environment."""
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_LOGS",
                 "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_a_missing_profile_reads_the_same_from_the_client_and_the_readers(no_aws_config: None) -> None:
    with pytest.raises(CredentialsError) as from_client:
        BatchClient(profile="no-such-profile", region="eu-west-1")
    with pytest.raises(CredentialsError) as from_reader:
        make_service_client("logs", profile="no-such-profile", region="eu-west-1")
    assert str(from_client.value) == str(from_reader.value)
    assert from_client.value.code == from_reader.value.code == "ProfileNotFound"
    assert "aws configure --profile no-such-profile" in str(from_client.value)


def test_a_missing_region_reads_the_same_from_the_client_and_the_readers(no_aws_config: None) -> None:
    with pytest.raises(AwsError) as from_client:
        BatchClient()
    with pytest.raises(AwsError) as from_reader:
        make_service_client("s3")
    assert str(from_client.value) == str(from_reader.value)
    assert from_client.value.code == from_reader.value.code == "NoRegion"


def test_a_loopback_endpoint_gets_dummy_credentials_and_a_region_in_both(no_aws_config: None) -> None:
    url = "http://127.0.0.1:1"
    with BatchClient(endpoint_url=url) as client:
        batch = client._client
    logs = make_service_client("logs", endpoint_url=url)
    for client in (batch, logs):
        assert client.meta.region_name == "us-east-1"
        assert client._request_signer._credentials.access_key == "batchkit"
