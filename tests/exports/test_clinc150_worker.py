"""The issue's "done when", end to end with a real RQ worker: a dataset admin exports the CLINC150
demo topic in every format with an 80/10/10 split, downloads the files, and finds per-intent counts
equal to the database's."""

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pyarrow.parquet as pq
import pytest
import yaml
from django.db import connection

from datasets.clinc150 import clinc150_import
from datasets.formats import WRITERS
from datasets.formats.rasa import rasa_intent_name
from datasets.models import Export, Question
from datasets.selectors import intent_infos
from tests.api.clients import api_as

# serialized_rollback: an earlier transactional test (distiller, labeling) flushes the database,
# roles created by migrations included; this restores them first.
pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
ROOT = Path(__file__).resolve().parents[2]
SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1}


def run_worker(export_root):
    """`manage.py rqworker exports --burst` in a subprocess, on the test database."""
    url = urlparse(os.environ["DATABASE_URL"])
    env = {**os.environ, "DATABASE_URL": urlunparse(url._replace(path="/" + connection.settings_dict["NAME"])),
           "EXPORT_ROOT": str(export_root), "DEBUG": "1"}
    subprocess.run([sys.executable, "manage.py", "rqworker", "exports", "--burst"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=600)


def intents_in(format: str, name: str, data: bytes, rasa_names: dict[str, str]) -> Counter:
    """Questions per intent (numbered name) in one downloaded file."""
    if format in ("parquet", "huggingface_parquet"):
        return Counter(pq.read_table(io.BytesIO(data), columns=["intent"]).column("intent").to_pylist())
    text = data.decode("utf-8")
    if format in ("jsonl", "json"):
        rows = json.loads(text) if format == "json" else [json.loads(line) for line in text.splitlines()]
        return Counter(r["intent_full_name"] for r in rows)
    if format == "huggingface":
        return Counter(json.loads(line)["intent"] for line in text.splitlines())
    if format == "csv":
        return Counter(row["intent"] for row in csv.DictReader(io.StringIO(text)))
    if format == "alpaca":
        return Counter(r["output"] for r in json.loads(text))
    if format == "sharegpt":
        return Counter(json.loads(line)["conversations"][-1]["value"] for line in text.splitlines())
    if format == "openai":
        return Counter(json.loads(line)["messages"][-1]["content"] for line in text.splitlines())
    if format == "rasa":
        return Counter({rasa_names[block["intent"]]: block["examples"].count("\n- ") + 1
                        for block in yaml.safe_load(text)["nlu"]})
    raise AssertionError(format)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis of tests/services.sh")
def test_a_dataset_admin_exports_clinc150_in_every_format_and_the_counts_match(dataset_admin, reviewer, tmp_path,
                                                                               settings):
    import django_rq

    django_rq.get_queue("exports").empty()
    settings.EXPORT_ROOT = tmp_path
    topic = clinc150_import().topic
    infos = intent_infos(topic=topic)
    in_db = Counter({infos[i].intent_full_name: n for i, n in Counter(
        Question.objects.filter(topic=topic, status__in=["approved", "relabeled"], intent__out_of_scope=False)
        .values_list("intent_id", flat=True)
    ).items()})
    rasa_names = {rasa_intent_name(i.intent_hierarchy[1:]): i.intent_full_name for i in infos.values()}

    assert api_as(reviewer).post("/api/v1/exports/", {"topic": topic.pk, "format": "jsonl"},
                                 format="json").status_code == 403
    client = api_as(dataset_admin)
    ids = {}
    for format in WRITERS:
        response = client.post("/api/v1/exports/", {"topic": topic.pk, "format": format, "split": SPLIT, "seed": 7},
                               format="json")
        if format.startswith("triplets"):  # hard negatives only, and CLINC150 has none: refused up front
            assert response.status_code == 400 and response.json()["error"]["code"] == "empty_export"
            continue
        assert response.status_code == 202, response.json()
        ids[format] = response.json()["id"]
    run_worker(tmp_path)

    for format, export_id in ids.items():
        body = client.get(f"/api/v1/exports/{export_id}/").json()
        assert body["status"] == "succeeded", (format, body["error"])
        assert sum(body["counts"].values()) == sum(in_db.values()) == 22_434
        assert {name: sum(split.values()) for name, split in body["intent_counts"].items()} == in_db
        for split, share in SPLIT.items():  # stratified: every intent close to its share in every split
            assert abs(body["counts"][split] - share * 22_434) < 150, (format, body["counts"])
        found = Counter()
        archive = client.get(body["download_url"])
        with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as bundle:
            for name in bundle.namelist():
                if name.split(".")[0] in SPLIT:
                    found += intents_in(format, name, bundle.read(name), rasa_names)
        assert found == in_db, format
    assert Export.objects.filter(status="succeeded").count() == len(ids) == len(WRITERS) - 2
