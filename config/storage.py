"""Where the product keeps the files it writes: Django's storage API, the storage named "exports".

By default that is the local folder EXPORT_ROOT (one machine, or a folder every machine mounts);
with S3_BUCKET set it is an S3-compatible object store (AWS S3, MinIO, Ceph...) through
django-storages, so a worker on one machine writes an export and a web process on another serves
it. Names are the same in both: "<export id>/train.jsonl" under EXPORT_ROOT or the bucket's prefix.

Writers never write into the storage directly: they stream to a local folder (fast, bounded
memory) and each finished file is then put into the storage (`storage_file_put`): moved into place
on the local folder, uploaded (in parts when large) to an object store. Reads stream too
(`storage_file_open`). Keys and secrets come from the environment only (config/settings.py).
"""

from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages


class LocalExportStorage(FileSystemStorage):
    """EXPORT_ROOT, read on every use so tests can move it. Never served from a public URL: only the
    authorised download views read it. A file saved under an existing name replaces it (an export
    written again), rather than getting a random suffix."""

    def __init__(self, **options):
        options.setdefault("allow_overwrite", True)
        super().__init__(**options)

    @property
    def base_location(self):
        return settings.EXPORT_ROOT

    @property
    def location(self):
        return str(settings.EXPORT_ROOT)

    @property
    def base_url(self):
        return None

    def open_stream(self, name: str) -> BinaryIO:
        return open(self.path(name), "rb")  # noqa: SIM115 - the caller (a streaming response) closes it


try:
    from storages.backends.s3 import S3Storage
    from storages.utils import clean_name
except ImportError:  # django-storages is in requirements.txt; without it only the local folder works
    S3Storage = None

if S3Storage is not None:
    class S3ExportStorage(S3Storage):
        """An S3-compatible bucket. Objects are private (no ACL, no public URL); downloads stream
        through the web process, which checks the user's role first."""

        def open_stream(self, name: str) -> BinaryIO:
            # S3Storage.open() copies the whole object into a temporary file before the first byte
            # (in memory, by default); the GET's body streams instead.
            key = self._normalize_name(clean_name(name))
            client = self.connection.meta.client
            try:
                return client.get_object(Bucket=self.bucket_name, Key=key)["Body"]
            except client.exceptions.NoSuchKey:  # as the local folder says it, so callers catch one error
                raise FileNotFoundError(f"No stored file {name!r}.") from None


def export_storage() -> Storage:
    """The storage of exports and the other files the product writes (settings.STORAGES["exports"])."""
    return storages["exports"]


def storage_is_local(storage: Storage) -> bool:
    return isinstance(storage, FileSystemStorage)


class _FinishedFile(File):
    # FileSystemStorage moves a file that has a temporary_file_path() instead of copying it, so on
    # the local folder a finished export is renamed into place; an object store reads and uploads it.
    def temporary_file_path(self) -> str:
        return self.name


def storage_file_put(storage: Storage, name: str, path: Path) -> int:
    """Put the finished local file `path` into `storage` as `name` (replacing what was there) and
    return its size. The local file is moved (local folder) or uploaded and left for the caller
    to remove (object store; files past 8 MB go in parts of 8 MB, s3transfer's defaults)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        saved = storage.save(name, _FinishedFile(handle, name=str(path)))
    if saved != name:  # a storage that renamed it would leave the export pointing at nothing
        storage.delete(saved)
        raise OSError(f"The storage saved {name!r} as {saved!r}: it must allow overwriting.")
    return size


def storage_file_open(storage: Storage, name: str) -> BinaryIO:
    """A stream of the stored file `name` (for a streaming response: read in blocks, never whole)."""
    open_stream = getattr(storage, "open_stream", None)
    return open_stream(name) if open_stream else storage.open(name, "rb")


def storage_folder_delete(storage: Storage, folder: str) -> int:
    """Delete every file stored under `folder` (and the folder, on a local one); returns how many."""
    try:
        subfolders, files = storage.listdir(folder)
    except FileNotFoundError:
        return 0
    deleted = 0
    for sub in subfolders:
        deleted += storage_folder_delete(storage, f"{folder}/{sub}")
    for file in files:
        storage.delete(f"{folder}/{file}")
        deleted += 1
    if storage_is_local(storage):
        storage.delete(folder)  # the emptied directory
    return deleted
