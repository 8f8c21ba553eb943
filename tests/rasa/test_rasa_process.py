"""Training cache, Rasa's environment and child-process handling (no Rasa needed)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from bot.nlu_encoder import export_key, source_model_dir
from bot.rasa_process import (
    ManagedProcess,
    RasaProcesses,
    RasaStartError,
    free_port,
    main,
    wait_until_ready,
)
from bot.rasa_setup import (
    PROJECT_DIR,
    RasaSetupError,
    lock_store_env,
    model_hash,
    model_inputs,
    rasa_venv,
    tracker_store_url,
    train_if_changed,
)


def _fake_venv(root: Path, version: str = "3.6.21") -> Path:
    """A folder shaped like a virtualenv with Rasa `version` (enough to hash and locate)."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "rasa").write_text("#!/bin/sh\nexit 3\n")
    package = root / "lib" / "python3.10" / "site-packages" / "rasa"
    package.mkdir(parents=True)
    (package / "version.py").write_text(f'__version__ = "{version}"\n')
    return root


def _copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    for source in model_inputs(PROJECT_DIR):
        target = project / source.relative_to(PROJECT_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    return project


def test_model_inputs_are_config_domain_data_and_tellers_components() -> None:
    names = [p.relative_to(PROJECT_DIR).as_posix() for p in model_inputs(PROJECT_DIR)]
    assert names[:2] == ["config.yml", "domain.yml"]
    assert {"data/nlu.yml", "data/rules.yml", "data/stories.yml"} <= set(names)
    assert "teller_nlu/sentence_encoder.py" in names


def test_model_hash_changes_with_the_data_the_rasa_version_and_the_encoder(
    tmp_path: Path,
) -> None:
    project = _copy_project(tmp_path)
    before = model_hash(project, rasa_version="3.6.21", encoder_key="a")
    assert model_hash(project, rasa_version="3.6.21", encoder_key="a") == before
    assert model_hash(project, rasa_version="3.6.20", encoder_key="a") != before
    assert model_hash(project, rasa_version="3.6.21", encoder_key="b") != before
    nlu = project / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text() + "\n")
    assert model_hash(project, rasa_version="3.6.21", encoder_key="a") != before


def test_an_existing_model_with_the_hash_is_reused_without_training(tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path / "venv")  # its `rasa` exits 3: training would fail
    project = _copy_project(tmp_path)
    models = tmp_path / "models"
    models.mkdir()
    key = model_hash(project, rasa_version="3.6.21", encoder_key=export_key(source_model_dir()))
    cached = models / f"{key[:16]}.tar.gz"
    cached.write_bytes(b"model")
    assert train_if_changed(project, venv, models) == cached
    assert not (models / "encoder").exists()  # nothing to train: nothing exported


def test_training_failure_reports_the_log(tmp_path: Path, nlu_encoder: Path) -> None:
    venv = _fake_venv(tmp_path / "venv")
    (venv / "bin" / "rasa").write_text(
        '#!/bin/sh\necho "YAML is broken here; encoder $TELLER_NLU_ENCODER"\nexit 3\n'
    )
    (venv / "bin" / "rasa").chmod(0o755)
    with pytest.raises(Exception, match="YAML is broken here") as info:
        train_if_changed(
            _copy_project(tmp_path), venv, tmp_path / "models", encoder_dir=nlu_encoder.parent
        )
    assert "exit 3" in str(info.value)
    assert f"encoder {nlu_encoder}" in str(info.value)  # training is told where it is
    assert not list((tmp_path / "models").glob("*.tar.gz"))


def test_missing_rasa_venv_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(RasaSetupError, match="make rasa-setup"):
        rasa_venv(tmp_path / "nowhere")


def test_the_train_command_reports_setup_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--venv", str(tmp_path / "nowhere")]) == 2
    assert "make rasa-setup" in capsys.readouterr().err


def test_rasa_processes_need_a_trained_model(tmp_path: Path) -> None:
    with pytest.raises(RasaSetupError, match="make rasa-train"):
        RasaProcesses(
            tmp_path / "absent.tar.gz",
            api_url="http://127.0.0.1:8000",
            actions_token="t",
            database_url="sqlite:///x.db",
            venv=_fake_venv(tmp_path / "venv"),
        )


def test_tracker_store_url_for_teller_databases() -> None:
    assert tracker_store_url("sqlite:////data/teller.db") == "sqlite:////data/teller.db"
    assert (
        tracker_store_url("postgresql+psycopg://teller:s3cret@db:5432/teller")
        == "postgresql://teller:s3cret@db:5432/teller"
    )
    with pytest.raises(RasaSetupError, match="mysql"):
        tracker_store_url("mysql://u@h/db")


def test_lock_store_is_in_memory_without_redis() -> None:
    env = lock_store_env(None)
    assert env["TELLER_RASA_LOCK_STORE"] == "in_memory"
    assert all(value == "" for key, value in env.items() if "REDIS" in key)


def test_lock_store_from_a_redis_url() -> None:
    assert lock_store_env("redis://:p%40ss@cache:6380/2") == {
        "TELLER_RASA_LOCK_STORE": "redis",
        "TELLER_RASA_REDIS_HOST": "cache",
        "TELLER_RASA_REDIS_PORT": "6380",
        "TELLER_RASA_REDIS_PASSWORD": "p@ss",
        "TELLER_RASA_REDIS_DB": "2",
    }
    assert lock_store_env("redis://cache")["TELLER_RASA_REDIS_DB"] == "1"
    with pytest.raises(RasaSetupError, match="redis://"):
        lock_store_env("rediss://cache:6380")


def _python(code: str, tmp_path: Path, ready_url: str = "http://127.0.0.1:9/") -> ManagedProcess:
    return ManagedProcess(
        "test process",
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=dict(os.environ),
        log_path=tmp_path / "logs" / "process.log",
        ready_url=ready_url,
    )


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    process = _python(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n",
        tmp_path,
    )
    process.start()
    deadline = time.monotonic() + 10
    while "started" not in (tmp_path / "logs" / "process.log").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = process.pid
    assert pid is not None and process.running
    process.stop(grace_s=0.5)
    assert not process.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_readiness_waits_for_the_http_answer(tmp_path: Path) -> None:
    port = free_port()
    process = _python(
        f"import http.server\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), "
        f"http.server.SimpleHTTPRequestHandler).serve_forever()\n",
        tmp_path,
        ready_url=f"http://127.0.0.1:{port}/",
    )
    process.start()
    try:
        wait_until_ready([process], timeout_s=20)
    finally:
        process.stop(grace_s=5)
    assert not process.running


def test_a_process_that_exits_during_start_up_fails_with_its_log(tmp_path: Path) -> None:
    process = _python("print('no model found'); raise SystemExit(4)", tmp_path)
    process.start()
    try:
        with pytest.raises(RasaStartError, match=r"(?s)status 4.*no model found"):
            wait_until_ready([process], timeout_s=20)
    finally:
        process.stop()


def test_a_process_that_answers_a_failed_status_fails_at_once_with_its_log(
    tmp_path: Path,
) -> None:
    port = free_port()
    process = ManagedProcess(
        "test server",
        [
            sys.executable, "-c",
            "import http.server\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        self.send_response(409); self.end_headers()\n"
            "    def log_message(self, *args):\n"
            "        pass\n"
            "print('Could not load model', flush=True)\n"
            f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n",
        ],
        cwd=tmp_path,
        env=dict(os.environ),
        log_path=tmp_path / "logs" / "process.log",
        ready_url=f"http://127.0.0.1:{port}/status?token=secret",
        failed_statuses=frozenset({409}),
    )  # fmt: skip
    process.start()
    started = time.monotonic()
    try:
        with pytest.raises(
            RasaStartError, match=r"(?s)answers 409 on .*/status;.*load model"
        ) as info:
            wait_until_ready([process], timeout_s=60)
    finally:
        process.stop()
    assert time.monotonic() - started < 30  # not the whole timeout
    assert "secret" not in str(info.value)  # the URL's token is not in the message


def test_stop_is_safe_twice_and_before_start(tmp_path: Path) -> None:
    process = _python("import time; time.sleep(30)", tmp_path)
    process.stop()
    process.start()
    process.stop()
    process.stop()
    assert not process.running
