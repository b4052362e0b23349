"""Two nodes behind HAProxy whose blobs are in one S3-compatible bucket (a real moto_server on loopback), not a
shared folder: a node killed mid-upload loses nothing, the retry on the other node succeeds, and the bucket
holds only ciphertext of the records that exist."""

from __future__ import annotations

import pytest

from medvault.blobs import is_blob_name
from tests.blobs.conftest import s3  # noqa: F401 - the session's moto_server fixture
from tests.cluster import Cluster
from tests.test_cluster import killed_mid_upload, patient  # noqa: F401 - `patient` signs in on this module's cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_url, s3):  # noqa: F811
    bucket = s3.new_bucket()
    blob_env = {
        "MEDVAULT_BLOB_URL": s3.url(bucket, "records"),
        "MEDVAULT_S3_ACCESS_KEY": s3.access_key,
        "MEDVAULT_S3_SECRET_KEY": s3.secret_key,
    }
    nodes = Cluster(tmp_path_factory.mktemp("cluster-s3"), pg_url, blob_env=blob_env).start()
    nodes.bucket = bucket
    yield nodes
    nodes.stop()


def test_on_a_bucket_a_node_killed_mid_upload_loses_nothing_and_the_retry_succeeds(cluster, patient, s3):  # noqa: F811
    content, record = killed_mid_upload(cluster, patient)
    assert patient.get(f"/api/v1/records/{record}/content").content == content
    stored = {key.removeprefix("records/") for key in s3.objects(cluster.bucket)}
    assert stored and all(is_blob_name(name) for name in stored), stored
    for key in s3.objects(cluster.bucket):
        body = s3.client().get_object(Bucket=cluster.bucket, Key=key)["Body"].read()
        assert content[:4096] not in body, "a bucket object holds the record's plaintext"
