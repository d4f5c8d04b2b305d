"""An example ltengine plugin: a character n-gram encoder (hashing trick), in about twenty lines.

Install it (``pip install plugins/example_third_party``) and use ``lt.merge(..., model="char-ngrams")``.
"""

import dataclasses
import zlib

import numpy as np

import ltengine as lt


class CharNgramEncoder(lt.Encoder):
    """Bag of hashed character n-grams, L2-normalised: catches typos and reordered words."""

    name = "char-ngrams"

    @dataclasses.dataclass(frozen=True)
    class Options:
        n: int = 3
        dimension: int = 4096

    @property
    def dimension(self) -> int:
        return self.options.dimension

    def encode(self, texts, *, role):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {text.casefold()} "
            for i in range(len(padded) - self.options.n + 1):
                out[row, zlib.crc32(padded[i : i + self.options.n].encode()) % self.dimension] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@lt.hookimpl
def register_encoders(register):
    register(CharNgramEncoder)
