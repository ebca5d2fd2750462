"""Output files (issue 22), the agent's side: `deplite-agent files upload` in a step and the workflow's
`outputs:`, against the fake server's presign/complete endpoints and its bucket, which checks the signed
sha256 the way S3 does."""

from __future__ import annotations

import hashlib
import os
import subprocess

from .harness import agent_command

RUN = ("--poll-wait", "1", "--stop-timeout", "20")


def step_env(server, job, **extra):
    """What the runner gives a step: the server, the job's id and its token."""
    return {"url": server.url, "DEPLITE_JOB_ID": job.id, "DEPLITE_JOB_TOKEN": job.job_token, **extra}


def write(home, relative: str, content: bytes):
    path = home.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# -- the command -------------------------------------------------------------------------------------------------
def test_upload_streams_each_file_to_the_bucket_and_prints_its_id(home, fake_server):
    job = fake_server.running_job()
    write(home, "reports/a.html", b"<h1>a</h1>")
    write(home, "reports/b.html", b"<h1>bb</h1>")
    result = home.run_cli(
        "files", "upload", "reports/*.html", "--content-type", "text/html", **step_env(fake_server, job)
    )
    assert result.returncode == 0, result.stderr
    outputs = {o["name"]: o for o in fake_server.job_outputs(job)}
    assert set(outputs) == {"a.html", "b.html"} and {o["status"] for o in outputs.values()} == {"available"}
    lines = result.stdout.splitlines()
    a, b = outputs["a.html"], outputs["b.html"]
    assert lines == [
        f"{a['fileId']}  a.html  10 bytes  sha256:{hashlib.sha256(b'<h1>a</h1>').hexdigest()}",
        f"{b['fileId']}  b.html  11 bytes  sha256:{hashlib.sha256(b'<h1>bb</h1>').hexdigest()}",
    ]
    assert fake_server.bucket[a["fileId"]] == b"<h1>a</h1>" and a["contentType"] == "text/html"
    api = [r for r in fake_server.requests if r["path"].startswith("/api/")]
    assert [r["status"] for r in api] == [201, 200, 201, 200]
    assert all(r["headers"].get("Authorization") == f"Bearer {job.job_token}" for r in api)
    puts = [r for r in fake_server.requests if r["method"] == "PUT"]
    # The bucket gets the signed headers and never the job's token.
    assert len(puts) == 2 and all("Authorization" not in r["headers"] for r in puts)
    assert all(r["headers"].get("Content-Length") and "Transfer-Encoding" not in r["headers"] for r in puts)


def test_name_renames_a_single_file_and_is_refused_for_several(home, fake_server):
    job = fake_server.running_job()
    write(home, "dump.sql", b"select 1;\n")
    write(home, "other.sql", b"select 2;\n")
    renamed = home.run_cli(
        "files", "upload", "dump.sql", "--name", "before-migration.sql", **step_env(fake_server, job)
    )
    assert renamed.returncode == 0, renamed.stderr
    assert [o["name"] for o in fake_server.job_outputs(job)] == ["before-migration.sql"]
    several = home.run_cli("files", "upload", "*.sql", "--name", "x.sql", **step_env(fake_server, job))
    assert several.returncode == 2
    assert "--name names one file, but 2 match" in several.stderr
    assert len(fake_server.job_outputs(job)) == 1


def test_a_glob_matching_nothing_is_a_usage_error_and_uploads_nothing(home, fake_server):
    job = fake_server.running_job()
    write(home, "present.txt", b"x")
    result = home.run_cli("files", "upload", "present.txt", "reports/*.html", **step_env(fake_server, job))
    assert result.returncode == 2
    assert "reports/*.html: no file matches" in result.stderr
    missing = home.run_cli("files", "upload", "nope.txt", **step_env(fake_server, job))
    assert missing.returncode == 2 and "nope.txt: no such file" in missing.stderr
    assert fake_server.job_outputs(job) == []


def test_upload_outside_a_step_says_it_needs_the_job(home, fake_server):
    write(home, "a.txt", b"x")
    result = home.run_cli("files", "upload", "a.txt", url=fake_server.url)
    assert result.returncode == 2
    assert "runs inside a workflow step (it needs DEPLITE_JOB_TOKEN, DEPLITE_JOB_ID and DEPLITE_URL)" in result.stderr


def test_server_refusals_print_the_servers_message_and_exit_1(home, fake_server):
    job = fake_server.running_job()
    write(home, "a.txt", b"x")
    fake_server.output_binding = False
    no_binding = home.run_cli("files", "upload", "a.txt", **step_env(fake_server, job))
    assert no_binding.returncode == 1
    assert "no_output_binding: No storage binding for outputs: set the trigger's outputBindingId." in no_binding.stderr
    fake_server.output_binding = True
    fake_server.max_outputs = 0
    too_many = home.run_cli("files", "upload", "a.txt", **step_env(fake_server, job))
    assert too_many.returncode == 1 and "too_many_outputs: A job keeps at most 0 output files." in too_many.stderr
    fake_server.max_outputs = 100
    fake_server.max_upload_size = 0
    too_large = home.run_cli("files", "upload", "a.txt", **step_env(fake_server, job))
    assert too_large.returncode == 1 and "HTTP 413 file_too_large" in too_large.stderr
    assert fake_server.job_outputs(job) == []


def test_the_token_uploads_only_to_its_own_job_and_only_while_it_runs(home, fake_server):
    job, other = fake_server.running_job(), fake_server.running_job()
    write(home, "a.txt", b"x")
    # Another job's id with this job's token: the server does not know that job for this token.
    wrong_job = home.run_cli("files", "upload", "a.txt", **{**step_env(fake_server, job), "DEPLITE_JOB_ID": other.id})
    assert wrong_job.returncode == 1 and "HTTP 404 not_found" in wrong_job.stderr
    fake_server.end_job(job)
    ended = home.run_cli("files", "upload", "a.txt", **step_env(fake_server, job))
    assert ended.returncode == 1 and "HTTP 401 invalid_job_token" in ended.stderr
    assert fake_server.outputs == {}


def test_a_body_the_bucket_does_not_match_with_the_signed_sha256_is_refused(home, fake_server):
    job = fake_server.running_job()
    write(home, "a.bin", b"payload")
    fake_server.bucket_corrupts = True
    result = home.run_cli("files", "upload", "a.bin", **step_env(fake_server, job))
    assert result.returncode == 1
    assert "storage refused the upload (HTTP 400 BadDigest)" in result.stderr
    assert [o["status"] for o in fake_server.job_outputs(job)] == ["pending"]  # never completed
    assert fake_server.bucket == {}
    # A PUT the bucket refuses as the client's fault is not retried.
    assert len([r for r in fake_server.requests if r["method"] == "PUT"]) == 1


def test_a_put_the_bucket_answers_503_is_tried_again_and_an_empty_file_uploads(home, fake_server):
    job = fake_server.running_job()
    write(home, "a.txt", b"after a retry")
    write(home, "empty.txt", b"")
    fake_server.bucket_unavailable = 1
    result = home.run_cli("files", "upload", "a.txt", "empty.txt", **step_env(fake_server, job))
    assert result.returncode == 0, result.stderr
    puts = [r["status"] for r in fake_server.requests if r["method"] == "PUT"]
    assert puts == [503, 200, 200]
    outputs = {o["name"]: o for o in fake_server.job_outputs(job)}
    assert fake_server.bucket[outputs["a.txt"]["fileId"]] == b"after a retry"
    assert fake_server.bucket[outputs["empty.txt"]["fileId"]] == b""
    assert outputs["empty.txt"]["status"] == "available"
    assert f"empty.txt  0 bytes  sha256:{hashlib.sha256(b'').hexdigest()}" in result.stdout


def test_a_large_file_streams_with_flat_memory_and_progress_lines(home, fake_server):
    job = fake_server.running_job()
    size = 96 * 1024 * 1024
    path = home.root / "big.bin"
    with open(path, "wb") as f:
        block = os.urandom(1024 * 1024)
        for _ in range(96):
            f.write(block)
    # The CLI in a wrapper reporting its own peak RSS (VmHWM: this process's, unlike ru_maxrss, which may
    # carry the forking parent's): a read() of the whole file would pass 96 MiB.
    wrapper = (
        "import runpy, sys\n"
        "sys.argv = ['deplite-agent', 'files', 'upload', 'big.bin']\n"
        "try:\n    runpy.run_module('deplite_agent', run_name='__main__')\n"
        "finally:\n    print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0], file=sys.stderr)\n"
    )
    result = subprocess.run(
        [agent_command()[0], "-c", wrapper],
        cwd=home.root,
        env=home.env(**step_env(fake_server, job)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (output,) = fake_server.job_outputs(job)
    assert output["size"] == size and len(fake_server.bucket[output["fileId"]]) == size
    progress = [line for line in result.stderr.splitlines() if line.startswith("uploading ")]
    assert 5 <= len(progress) <= 10 and progress[-1].endswith("(100%)"), progress
    maxrss_mib = int(result.stderr.rsplit("VmHWM:", 1)[1].split()[0]) / 1024
    assert maxrss_mib < 80, f"peak RSS {maxrss_mib:.0f} MiB for a 96 MiB file"


# -- the workflow's outputs: ----------------------------------------------------------------------------------------
def run_job(home, fake_server, agent_credentials, workflow: str):
    job = fake_server.queue_job(workflow)
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    agent.wait(60)  # `--once` exits 1 when the job failed
    assert job.finish is not None, agent.output()
    return job


def test_declared_outputs_and_the_command_upload_as_outputs_of_the_job(home, fake_server, agent_credentials):
    # `deplite-agent …` from this checkout, with the interpreter the test runs the agent with.
    upload = " ".join(agent_command("files", "upload"))
    home.write_workflow(
        "report",
        f"""
        outputs:
          - path: "reports/*.html"
          - path: build/notes.md
            name: release-notes.md
            required: true
        steps:
          - name: build
            run: |
              mkdir -p reports build
              echo '<p>one</p>' > reports/one.html
              echo '<p>two</p>' > reports/two.html
              echo '# notes' > build/notes.md
              echo 'dump' > dump.sql
              {upload} dump.sql --content-type application/sql
    """,
    )
    job = run_job(home, fake_server, agent_credentials, "report")
    assert job.finish["status"] == "succeeded", job.log_text()
    outputs = {o["name"]: o for o in fake_server.job_outputs(job)}
    assert set(outputs) == {"dump.sql", "one.html", "two.html", "release-notes.md"}
    assert {o["status"] for o in outputs.values()} == {"available"}
    assert fake_server.bucket[outputs["release-notes.md"]["fileId"]] == b"# notes\n"
    log = job.log_text()
    # The command's id line is the step's stdout; the declared ones are the agent's lines in the job log.
    assert f"{outputs['dump.sql']['fileId']}  dump.sql  5 bytes" in log
    assert f"[deplite-agent] uploaded reports/one.html as output {outputs['one.html']['fileId']}  one.html" in log
    assert f"uploaded build/notes.md as output {outputs['release-notes.md']['fileId']}  release-notes.md" in log
    # Uploaded before the finish, with the job's token (it dies with the finish).
    finish_at = next(r["at"] for r in fake_server.requests if r["path"].endswith("/finish"))
    assert all(r["at"] < finish_at for r in fake_server.requests if r["method"] == "PUT")


def test_when_picks_the_outputs_for_the_steps_outcome(home, fake_server, agent_credentials):
    home.write_workflow(
        "migrate",
        """
        outputs:
          - {path: ok.txt}
          - {path: crash.txt, when: failure}
          - {path: always.txt, when: always}
        steps:
          - name: work
            run: |
              echo ok > ok.txt; echo crash > crash.txt; echo always > always.txt
              exit 4
    """,
    )
    job = run_job(home, fake_server, agent_credentials, "migrate")
    assert job.finish == {"status": "failed", "exitCode": 4, "error": 'step "work" exited with code 4'}
    assert sorted(o["name"] for o in fake_server.job_outputs(job)) == ["always.txt", "crash.txt"]


def test_a_cancelled_job_uploads_no_outputs(home, fake_server, agent_credentials):
    home.write_workflow(
        "long",
        """
        outputs: [{path: "*.txt", when: always}]
        steps:
          - name: wait
            run: |
              echo partial > partial.txt
              echo waiting
              sleep 300
    """,
    )
    job = fake_server.queue_job("long")
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    fake_server.wait_for(lambda: "waiting" in job.log_text(), 15, "the step to run")
    fake_server.request_cancel(job)
    assert fake_server.wait_finished(job, 15)["status"] == "cancelled"
    agent.wait(15)
    assert fake_server.outputs == {}
    assert "uploaded" not in job.log_text() and 'output "' not in job.log_text()


def test_a_declared_output_matching_nothing_warns_or_fails_the_job_when_required(home, fake_server, agent_credentials):
    home.write_workflow(
        "optional",
        """
        outputs: [{path: "coverage/*.xml"}]
        steps: [{name: a, run: "true"}]
    """,
    )
    job = run_job(home, fake_server, agent_credentials, "optional")
    assert job.finish["status"] == "succeeded"
    assert '[deplite-agent] warning: output "coverage/*.xml" matched no file in' in job.log_text()
    home.write_workflow(
        "strict",
        """
        outputs: [{path: "coverage/*.xml", required: true}]
        steps: [{name: a, run: "true"}]
    """,
    )
    job = run_job(home, fake_server, agent_credentials, "strict")
    assert job.finish["status"] == "failed"
    assert job.finish["error"].startswith('output "coverage/*.xml" matched no file in')
    assert "[deplite-agent] error: output" in job.log_text()


def test_a_declared_output_cannot_escape_the_jobs_directory_through_a_symlink(
    home, fake_server, agent_credentials, tmp_path
):
    secret = tmp_path / "outside.txt"
    secret.write_text("not the job's")
    home.write_workflow(
        "escape",
        f"""
        outputs: [{{path: "out/*", required: true}}]
        steps: [{{name: a, run: "mkdir -p out && ln -sf {secret} out/link.txt"}}]
    """,
    )
    job = run_job(home, fake_server, agent_credentials, "escape")
    assert job.finish["status"] == "failed"
    assert "points outside the job's directory" in job.finish["error"]
    assert fake_server.outputs == {}


def test_check_validates_the_outputs_section(home):
    home.write_workflow("good", "outputs: [{path: a.txt, when: always, required: true}]\nsteps: [{name: a, run: x}]\n")
    home.write_workflow("when", "outputs:\n  - path: a.txt\n    when: sometimes\nsteps: [{name: a, run: x}]\n")
    home.write_workflow("up", "outputs:\n  - path: ../etc/passwd\nsteps: [{name: a, run: x}]\n")
    home.write_workflow("key", "outputs:\n  - path: a\n    paths: b\nsteps: [{name: a, run: x}]\n")
    home.write_workflow("named", "outputs:\n  - path: a\n    name: dir/a\nsteps: [{name: a, run: x}]\n")
    result = home.run_cli("check", "--offline")
    assert result.returncode == 1
    assert "ok: workflows/good.yaml: 1 step(s), 1 output(s), timeout 60 min" in result.stdout
    assert "error: workflows/when.yaml:3: output 1 `when` must be one of success, failure, always" in result.stdout
    assert "error: workflows/up.yaml:2: output 1 `path` must stay inside the job's directory (no `..`)" in result.stdout
    assert "error: workflows/key.yaml:3: output 1 has unknown key 'paths'" in result.stdout
    assert "error: workflows/named.yaml:3: output 1 `name` must be a file name, without a directory" in result.stdout
    assert "4 problem(s)" in result.stdout


def test_exec_lists_declared_outputs_without_a_server(home):
    home.write_workflow("local", "outputs: [{path: a.txt}]\nsteps: [{name: a, run: 'echo a > a.txt'}]\n")
    result = home.run_cli("exec", "local")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '[deplite-agent] output "a.txt": a.txt not uploaded (no server: the job runs locally)' in result.stdout
