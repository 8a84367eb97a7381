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


def test_plain_text_is_parsed_without_a_parser_process(tmp_path: Path) -> None:
    """UTF-8 .txt and Markdown parse inline: no process pool (pebble), no parser
    library; and the result is the parser child's."""
    loaded = loaded_after(
        """
        from ingest.pipeline.isolation import IsolatedParser
        from ingest.pipeline.segments import ParseLimits
        parser = IsolatedParser(workers=1, timeout_s=60, memory_mb=2048, limits=ParseLimits())
        [txt] = parser.parse("Plain text, caf\\u00e9.\\r\\nSecond line.".encode(), "a.txt")
        assert txt.text == "Plain text, caf\\u00e9.\\nSecond line.", txt
        md = parser.parse(b"# Guide\\n\\nIntro.\\n\\n## Install\\n\\nRun it.\\n", "b.md")
        assert [s.heading for s in md] == ["Guide", "Guide > Install"], md
        parser.close()
        """,
        tmp_path,
    )
    assert loaded & PARSER_LIBRARIES == set()
    assert "alembic" not in loaded


def test_other_text_still_goes_to_the_parser_process() -> None:
    from ingest.pipeline.isolation import IsolatedParser, parses_inline
    from ingest.pipeline.segments import ParseLimits

    latin1 = "Caf\u00e9 cr\u00e8me, na\u00efve r\u00e9sum\u00e9. " * 20
    assert parses_inline(b"plain", "notes.TXT")
    assert not parses_inline(latin1.encode("cp1252"), "a.txt")  # charset guessing
    assert not parses_inline("utf-16 text".encode("utf-16"), "a.txt")
    assert not parses_inline(b"#" + b" x" * 5000, "long.md")  # one very long line
    assert not parses_inline(b"<p>html</p>", "a.html")
    parser = IsolatedParser(workers=1, timeout_s=120, memory_mb=2048, limits=ParseLimits())
    try:
        [segment] = parser.parse(latin1.encode("cp1252"), "a.txt")
        assert segment.text == latin1.strip()
        assert parser._started is not None  # the pool was started for it
    finally:
        parser.close()


def test_opening_a_current_store_does_not_import_alembic(tmp_path: Path) -> None:
    from ingest.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'ingest.db'}")
    store.migrate()
    store.close()
    loaded = loaded_after(
        """
        from ingest.context import Context
        from ingest.settings import load_settings
        ctx = Context(load_settings())
        ctx.close()
        """,
        tmp_path,
    )
    assert "alembic" not in loaded


def test_the_local_commands_do_not_import_the_http_client(tmp_path: Path) -> None:
    """`ingest add` on local files loads the commands, not httpx (only a remote
    server needs it)."""
    loaded = loaded_after("import ingest.cli.app", tmp_path)
    assert "httpx" not in loaded
