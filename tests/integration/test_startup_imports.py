"""A one-shot command loads only what it uses: `import ingest.cli` no parser library
and no model runtime; a search the model but no parser library and no PyTorch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PARSER_LIBRARIES = {
    "pypdfium2",
    "docx",
    "pptx",
    "openpyxl",
    "trafilatura",
    "semantic_text_splitter",
    "pebble",
}
MODEL_RUNTIMES = {"onnxruntime", "onnx", "tokenizers", "torch", "sentence_transformers"}


def loaded_after(script: str, cwd: Path) -> set[str]:
    """Top-level packages imported by `script`, run in a fresh interpreter."""
    code = textwrap.dedent(script) + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    env["DATABASE_URL"] = f"sqlite:///{cwd / 'ingest.db'}"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    return {m.split(".")[0] for m in modules}


def test_importing_the_cli_loads_no_parser_library_and_no_model(tmp_path: Path) -> None:
    loaded = loaded_after("import ingest.cli", tmp_path)
    assert loaded & (PARSER_LIBRARIES | MODEL_RUNTIMES) == set()


@pytest.mark.slow
def test_a_search_loads_the_model_but_no_parser_library(tmp_path: Path) -> None:
    loaded = loaded_after(
        """
        from ingest.context import Context
        from ingest.settings import load_settings
        ctx = Context(load_settings())
        assert ctx.searcher.search("durable ingestion", k=3) == []
        ctx.close()
        """,
        tmp_path,
    )
    assert {"onnxruntime", "tokenizers"} <= loaded
    assert loaded & PARSER_LIBRARIES == set()
    assert "torch" not in loaded


def test_the_console_scripts_import_loads_no_command(tmp_path: Path) -> None:
    """The `ingest` script starts with `from ingest.cli import main`, and so does every
    parser process `ingest add` spawns (multiprocessing re-runs the script there):
    that import must not load the commands, or each parser process pays for them."""
    loaded = loaded_after("from ingest.cli import main", tmp_path)
    assert loaded & {"typer", "rich", "sqlalchemy", "httpx", "pydantic_settings"} == set()


def test_an_ingestor_loads_no_parser_library_until_it_parses(tmp_path: Path) -> None:
    """With isolated parsing (the default) the parser libraries load in the parser
    processes only: `ingest add` of unchanged files loads none of them."""
    loaded = loaded_after(
        """
        from ingest.context import Context
        from ingest.settings import load_settings
        ctx = Context(load_settings())
        assert ctx.ingestor.pipeline.fingerprint
        ctx.close()
        """,
        tmp_path,
    )
    assert loaded & {"pypdfium2", "docx", "pptx", "openpyxl", "trafilatura"} == set()
