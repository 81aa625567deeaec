from tests.object_store import bucket, s3_server  # noqa: F401 - fixtures of the object-store tests
