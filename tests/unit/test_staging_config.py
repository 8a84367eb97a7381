"""INGEST_STORAGE=s3 misconfigured: a ConfigError that says what to do, and the
default install (filesystem staging) never imports the S3 client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ingest.settings import Settings, load_settings
from ingest.staging import build_staging


def test_s3_without_a_bucket_says_which_setting_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="INGEST_S3_BUCKET"):
        build_staging(Settings(storage="s3", incoming_dir=tmp_path))


def test_s3_without_boto3_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # what `import boto3` sees uninstalled
    settings = Settings(storage="s3", s3_bucket="uploads", incoming_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"ingest\[s3\]"):
        build_staging(settings)


def test_an_unknown_storage_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_STORAGE", "nfs")
    with pytest.raises(ConfigError, match="INGEST_STORAGE='nfs': must be one of"):
        load_settings()


def test_filesystem_staging_never_imports_the_s3_client(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from ingest.settings import Settings\n"
        "from ingest.staging import build_staging\n"
        f"build_staging(Settings(incoming_dir={str(tmp_path)!r})).check_ready()\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
