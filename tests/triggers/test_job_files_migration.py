"""triggers/0002_job_files_and_output_binding links the input files of jobs created before JobFile existed."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("triggers", "0001_initial"), ("storage", "0002_job_outputs")]
AFTER = [("triggers", "0002_job_files_and_output_binding")]


def test_existing_jobs_input_files_get_their_input_rows():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Org = old.get_model("orgs", "Organization")
    Binding = old.get_model("storage", "StorageBinding")
    StoredFile = old.get_model("storage", "StoredFile")
    Job = old.get_model("triggers", "Job")
    org = Org.objects.create(name="Old", slug="old")
    binding = Binding.objects.create(
        org=org, name="b", endpoint="https://s3.example.com", bucket="bkt", access_key="k", secret_key="s"
    )
    stored = StoredFile.objects.create(
        org=org, binding=binding, file_name="a.tar.gz", content_type="x/y", object_key="k"
    )
    gone = str(uuid.uuid4())
    inputs = [{"param": "F", "fileId": str(stored.pk)}, {"param": "G", "fileId": gone}]
    job = Job.objects.create(org=org, trigger_name="t", workflow="w", short_id="abcd1234", input_files=inputs)
    Job.objects.create(org=org, trigger_name="t", workflow="w", short_id="abcd5678")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    rows = list(new.get_model("triggers", "JobFile").objects.values_list("job_id", "file_id", "direction"))
    assert rows == [(job.pk, stored.pk, "input")]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
