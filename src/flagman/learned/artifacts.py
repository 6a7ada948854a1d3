"""Router artifacts: a versioned folder of plain arrays plus JSON metadata.

    DIR/meta.json   format + version, kind, models, params, feature spec and
                      encoder names, data hash, metrics, and the sha256 and
                      shape of every array
    DIR/weights.npz   the arrays (loaded with allow_pickle=False)

Never pickles: loading a router must not run code from the file.  Anything
that does not match its metadata (hash, shapes, models, encoder) is refused
with an `ArtifactError` that says what and where.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np

from flagman.errors import ConfigError
from flagman.learned.features import EncoderLoader, Featurizer, default_encoder_loader
from flagman.learned.routers import Router, router_class
from flagman.watch import Signature, file_signature

FORMAT = "flagman-learned-router"
FORMAT_VERSION = 1
META_FILE = "meta.json"
WEIGHTS_FILE = "weights.npz"


class ArtifactError(ConfigError):
    """A router folder that is missing, corrupted or does not match what is asked."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_router(router: Router, out: str | Path, *, data_hash: str = "",
                metrics: dict[str, Any] | None = None,
                extra: dict[str, Any] | None = None) -> Path:
    """Write `router` to the folder `out` (created); returns the folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    f_arrays, f_meta = router.featurizer.to_state()
    r_arrays, r_meta = router.state()
    arrays = {**f_arrays, **r_arrays}
    buf = io.BytesIO()
    np.savez_compressed(buf, **cast(dict[str, Any], arrays))
    (out / WEIGHTS_FILE).write_bytes(buf.getvalue())
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": router.kind,
        "models": router.models,
        "params": router.params,
        "features": f_meta,
        "router": r_meta,
        "data_hash": data_hash,
        "metrics": metrics or {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "weights": {"file": WEIGHTS_FILE, "sha256": _sha256(out / WEIGHTS_FILE),
                    "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)}
                               for k, v in arrays.items()}},
        **(extra or {}),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1, default=float) + "\n")
    return out


def read_meta(folder: Path) -> dict[str, Any]:
    p = folder / META_FILE
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{folder}: not a router folder (no {META_FILE})") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{p}: unreadable router metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{p}: not a flagman learned-router file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{p}: format version {meta.get('format_version')!r} is not "
                            f"supported (this flagman reads version {FORMAT_VERSION})")
    return meta


def _read_arrays(folder: Path, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    wp = folder / WEIGHTS_FILE
    if not wp.exists():
        raise ArtifactError(f"{folder}: {WEIGHTS_FILE} is missing")
    expected = meta.get("weights", {})
    if _sha256(wp) != expected.get("sha256"):
        raise ArtifactError(f"{wp}: checksum mismatch: the weights file is corrupted or does "
                            f"not belong to this {META_FILE}")
    try:
        with np.load(wp, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{wp}: unreadable weights: {exc}") from None
    listed = expected.get("arrays", {})
    if set(listed) != set(arrays):
        raise ArtifactError(f"{wp}: arrays differ from those listed in {META_FILE}")
    for k, spec in listed.items():
        if list(arrays[k].shape) != list(spec["shape"]):
            raise ArtifactError(f"{wp}: array {k!r} has shape {list(arrays[k].shape)}, "
                                f"metadata says {spec['shape']}")
    return arrays


def load_router_dir(folder: str | Path, *, models: list[str] | None = None,
                    encoder_loader: EncoderLoader = default_encoder_loader) -> Router:
    """Load and verify one artifact folder; `models`, if given, must be a subset."""
    folder = Path(folder)
    meta = read_meta(folder)
    arrays = _read_arrays(folder, meta)
    try:
        cls = router_class(str(meta["kind"]))
        feat = Featurizer.from_state(arrays, meta["features"], encoder_loader)
        router = cls(meta["models"], feat, meta.get("params"))
        router.load_state(arrays, meta.get("router", {}))
        expected = meta["features"].get("encoders", {})
        if expected:
            feat.check_encoders(expected)
    except (KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(f"{folder}: inconsistent router artifact: {exc}") from None
    if models is not None:
        missing = [m for m in models if m not in router.models]
        if missing:
            raise ArtifactError(f"{folder}: router was trained for {router.models}, "
                                f"not for {missing}")
    return router


def set_default_threshold(folder: Path, threshold: float, strong_fraction: float) -> None:
    """Record a calibrated threshold in the metadata (weights and their hash are untouched)."""
    meta = read_meta(folder)
    meta["params"]["threshold"] = threshold
    meta.setdefault("metrics", {})["calibration"] = {
        "strong_fraction": strong_fraction, "threshold": threshold}
    (folder / META_FILE).write_text(json.dumps(meta, indent=1, default=float) + "\n")


def resolve_router_path(name: str) -> Path:
    """`default` (or another packaged name) → the packaged folder; else a path."""
    if "/" not in name and "\\" not in name and not name.startswith("."):
        packaged = Path(str(resources.files("flagman"))) / "data" / "routers" / name
        if (packaged / META_FILE).exists():
            return packaged
    return Path(name).expanduser()


@dataclass
class RouterCache:
    """Loaded routers by path, loaded again only when a file changed.

    A config reload rebuilds every step; unchanged router folders are not read
    again.  Keep one per process (e.g. in a BuildContext's resources), not global.
    """

    encoder_loader: EncoderLoader = default_encoder_loader
    _entries: dict[str, tuple[tuple[Signature, ...], Router]] = field(default_factory=dict)

    def get(self, name: str) -> Router:
        folder = resolve_router_path(name).resolve()
        key = str(folder)
        fp = tuple(file_signature(folder / f) for f in (META_FILE, WEIGHTS_FILE))
        hit = self._entries.get(key)
        if hit is not None and None not in fp and hit[0] == fp:
            return hit[1]
        router = load_router_dir(folder, encoder_loader=self.encoder_loader)
        self._entries[key] = (fp, router)
        return router


def load_router(path_or_name: str | Path) -> Router:
    """Load a router folder or a packaged router name ("default")."""
    return load_router_dir(resolve_router_path(str(path_or_name)))
