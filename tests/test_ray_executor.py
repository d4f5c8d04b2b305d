"""executor="ray": Ray Data encoding actors and a sharded right-hand index give the local executor's links.

A contract like the retrievers' (tests/test_retrievers.py): same rows, same left order, top-1 equal on
>= 99.9 % of rows, and the run report shows >= 2 encoding actors and >= 2 shards at work.  One local
Ray with 2 CPUs (no dashboard, no usage stats) serves the whole module.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.errors import ConfigError

ray = pytest.importorskip("ray")

#: Texts per encoder call, in local and Ray runs alike (Ray encodes the local executor's chunks): small, so these
#: small tables still give several chunks to spread over the encoding actors.
CHUNK = 64
RAY = {"executor": "ray", "executor_options": {"num_cpus": 2, "encode_actors": 2, "shards": 2}}
WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda"]
CITIES = ["Paris", "Lyon", "Nice", "Lille"]


pytest_plugins = ["llm_fixtures"]  # fixtures: fake_openai, rerank_plugins


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    from llm_fixtures import SECRET

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    had_key = "LTENGINE_TEST_KEY" in os.environ
    os.environ.setdefault("LTENGINE_TEST_KEY", SECRET)  # a local Ray's workers inherit the environment at start
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()
    if not had_key:
        del os.environ["LTENGINE_TEST_KEY"]


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    names = [f"{WORDS[i % 8]} {WORDS[(i // 8) % 8]} trading {i} ltd" for i in range(320)]
    right = pd.DataFrame({"name": names, "city": [CITIES[i % 4] for i in range(320)], "rid": range(320)})
    pick = rng.choice(320, size=120, replace=False)
    left = pd.DataFrame({"name": [names[i].replace("trading", "trade").upper() for i in pick],
                         "city": right["city"].to_numpy()[pick], "lid": range(120)})
    return left, right


def _check_report(out: pd.DataFrame) -> dict:
    execution = out.attrs["ltengine"]["report"]["execution"]
    assert execution["executor"] == "ray"
    assert len(execution["encode_actors"]) >= 2, execution  # not everything in one task
    assert execution["shards_used"] >= 2, execution
    assert all(shard["searches"] >= 1 for shard in execution["shards"] if shard["rows"]), execution
    return execution


def test_hybrid_merge_matches_local() -> None:
    """Hybrid: the lexical IDF, the fusion and the match-probability model are fitted once, globally."""
    left, right = _tables()
    options = {"on": "name", "mode": "hybrid", "progress": False, "cache": False, "encode_chunk_size": CHUNK}
    local = lt.merge(left, right, **options)
    distributed = lt.merge(left, right, **options, **RAY)
    assert list(distributed.columns) == list(local.columns)
    assert distributed["lid"].tolist() == local["lid"].tolist()  # same rows, same left order
    assert (distributed["rid"].to_numpy() == local["rid"].to_numpy()).mean() >= 0.999
    np.testing.assert_allclose(distributed["score"], local["score"], atol=1e-5)
    np.testing.assert_allclose(distributed["match_probability"], local["match_probability"], atol=1e-4)
    execution = _check_report(distributed)
    assert sum(shard["rows"] for shard in execution["shards"]) == len(right)  # split by id hash
    assert "execution" not in local.attrs["ltengine"]["report"]


def test_blocked_knn_matches_local() -> None:
    """Blocked: whole blocks go to shards; the per-shard top-k is the block's top-k."""
    left, right = _tables()
    options = {"on": "name", "block_on": "city", "k": 3, "mode": "semantic", "progress": False, "cache": False,
               "encode_chunk_size": CHUNK}
    local = lt.merge_knn(left, right, **options)
    distributed = lt.merge_knn(left, right, **options, **RAY)
    assert distributed[["lid", "rank"]].values.tolist() == local[["lid", "rank"]].values.tolist()
    assert (distributed["rid"].to_numpy() == local["rid"].to_numpy()).mean() >= 0.999
    np.testing.assert_allclose(distributed["score"], local["score"], atol=1e-5)
    execution = _check_report(distributed)
    assert sum(shard["parts"] for shard in execution["shards"]) == len(CITIES)  # one index per block


def test_sharded_retriever_matches_exact_search() -> None:
    """The sharded index against the exact numpy reference: global top-k merged from the shards, and range."""
    from ltengine.execution.ray_session import RayOptions
    from ltengine.execution.ray_shards import ShardedRetriever, ShardPool

    rng = np.random.default_rng(1)
    right = rng.normal(size=(500, 16)).astype(np.float32)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    queries = rng.normal(size=(40, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    right_ids = np.arange(1000, 1500, dtype=np.int64)
    pool = ShardPool(RayOptions(shards=3), "faiss", {"index": "flat"})
    sharded = ShardedRetriever(pool, split=True)
    sharded.build(right, right_ids)
    got = sharded.search(queries, np.arange(40), 5)
    scores = queries @ right.T
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    assert got["rank"].tolist() == [1, 2, 3, 4, 5] * 40
    assert got["id_r"].to_numpy().reshape(40, 5).tolist() == right_ids[expected].tolist()
    np.testing.assert_allclose(got["retrieval_score"].to_numpy().reshape(40, 5),
                               np.take_along_axis(scores, expected, axis=1), atol=1e-5)
    ranged = sharded.search_range(queries, np.arange(40), 0.5)
    assert set(zip(ranged.id_l, ranged.id_r)) == {(i, right_ids[j]) for i, j in zip(*np.nonzero(scores >= 0.5))}
    assert [row["rows"] > 0 for row in pool.report()] == [True, True, True]
    assert [row["threads"] for row in pool.report()] == [1, 1, 1]  # 2 CPUs among 3 shards: at least one each


def test_shard_actors_get_the_cores_they_share() -> None:
    """Ray gives an actor one OpenMP thread; a shard gets its node's CPUs over the shards on that node."""
    from ltengine.execution.ray_session import RayOptions
    from ltengine.execution.ray_shards import ShardPool

    one = ShardPool(RayOptions(shards=1), "faiss", {"index": "flat"})
    one.start()
    told = ShardPool(RayOptions(shards=2, shard_threads=2), "faiss", {"index": "flat"})
    told.start()
    assert [row["threads"] for row in one.report()] == [2]  # the local Ray of these tests has 2 CPUs
    assert [row["threads"] for row in told.report()] == [2, 2]
    with pytest.raises(ConfigError, match="shard_threads must be a positive integer"):
        RayOptions(shard_threads=0)


def test_cluster_rows_matches_local() -> None:
    names = ["Acme Corp", "ACME Corporation", "acme corp.", "Globex Inc", "Globex Incorporated", "Initech",
             "Umbrella plc", "Umbrella PLC", "Hooli", "Hooli Inc"] * 3
    df = pd.DataFrame({"name": names})
    options = {"on": "name", "threshold": 0.8, "progress": False, "cache": False, "encode_chunk_size": CHUNK}
    local = lt.cluster_rows(df, **options)
    distributed = lt.cluster_rows(df, **options, **RAY)
    assert distributed["cluster"].tolist() == local["cluster"].tolist()
    assert distributed.attrs["ltengine"]["report"]["linker"]["execution"]["executor"] == "ray"


def test_local_executor_never_imports_ray() -> None:
    code = ("import sys, pandas as pd, ltengine as lt\n"
            "df = pd.DataFrame({'name': ['acme corp', 'globex inc']})\n"
            "lt.merge(df, df, on='name', progress=False, cache=False)\n"
            "assert 'ray' not in sys.modules, 'the local executor imported ray'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_bad_executor_settings_are_config_errors() -> None:
    df = pd.DataFrame({"name": ["a"]})
    with pytest.raises(ConfigError, match="unknown executor 'rya'.*ray"):
        lt.merge(df, df, on="name", executor="rya")
    with pytest.raises(ConfigError, match="no option 'shard'.*shards"):
        lt.merge(df, df, on="name", executor="ray", executor_options={"shard": 2})
    with pytest.raises(ConfigError, match="shards must be a positive integer"):
        lt.merge(df, df, on="name", executor="ray", executor_options={"shards": 0})


def test_cross_encoder_reranking_runs_on_ray_actors(tmp_path_factory) -> None:
    """A reranker that scores each pair on its own (the cross-encoder) scores the pairs on an actor pool."""
    from llm_fixtures import build_cross_encoder

    model = build_cross_encoder(tmp_path_factory.mktemp("ray_ce") / "mini-ce")
    left, right = _tables()
    options = {"on": "name", "k": 3, "mode": "semantic", "progress": False, "cache": False,
               "encode_chunk_size": CHUNK, "rerank": f"cross-encoder:{model}"}
    local = lt.merge_knn(left, right, **options)
    ray_run = {**RAY, "executor_options": {**RAY["executor_options"], "rerank_actors": 2, "rerank_batch_size": 64}}
    distributed = lt.merge_knn(left, right, **options, **ray_run)
    key = ["lid", "rid"]
    joined = local[[*key, "rerank_score", "is_match"]].merge(distributed[[*key, "rerank_score", "is_match"]], on=key,
                                                              suffixes=("_local", "_ray"), validate="1:1")
    assert len(joined) == len(local) == len(distributed)  # the same candidate pairs
    np.testing.assert_allclose(joined["rerank_score_ray"], joined["rerank_score_local"], atol=1e-5)
    stage = distributed.attrs["ltengine"]["report"]["rerank"]["stages"][0]
    assert stage["ray"]["pairs"] == len(distributed) and stage["ray"]["batches"] >= 2
    assert len(stage["ray"]["actors"]) >= 2, stage["ray"]  # not everything in one actor
    assert "ray" not in local.attrs["ltengine"]["report"]["rerank"]["stages"][0]


def test_hard_negative_mining_runs_on_ray(monkeypatch) -> None:
    """train_model's hard-negative mining (a semantic kNN link) with executor="ray" mines the local negatives."""
    from ltengine.execution.ray_linker import RayLinker
    from ltengine.learn.data import training_pairs
    from ltengine.learn.negatives import mine_hard_negatives

    left, right = _tables()
    frame = training_pairs(pd.DataFrame({"l": left["name"], "r": right["name"].to_numpy()[
        [int(name.split()[3]) for name in left["name"]]], "y": 1}), left_on="l", right_on="r", label="y")
    runs = []
    original = RayLinker.candidates

    def counted(self, *args, **kwargs):
        pairs = original(self, *args, **kwargs)
        runs.append(self.execution_report())
        return pairs

    monkeypatch.setattr(RayLinker, "candidates", counted)
    options = {"progress": False, "cache": False, "encode_chunk_size": CHUNK}
    local = mine_hard_negatives(frame, model="fast", per_left=2, options=options)
    distributed = mine_hard_negatives(frame, model="fast", per_left=2, options={**options, **RAY})
    assert distributed == local and len(local) == len(left)
    assert len(runs) == 1 and len(runs[0]["encode_actors"]) >= 2 and runs[0]["shards_used"] >= 2, runs


def test_llm_judge_requests_are_sent_from_ray_tasks(fake_openai, tmp_path) -> None:
    """The judge's budget, cache and journal stay in this process; its requests run as Ray tasks, and give the
    local verdicts."""
    from llm_fixtures import firms, judge_options

    from ltengine.errors import ComponentError

    left, right = firms()
    options = {"on": "name", "k": 3, "mode": "lexical", "progress": False, "rerank": "llm:openai/gpt-4o-mini",
               "rerank_options": judge_options(fake_openai, cascade=False, concurrency=2, batch_size=4)}
    local = lt.merge_knn(left, right, cache_dir=str(tmp_path / "local"), **options)
    n_local = len(fake_openai.chat_requests())
    distributed = lt.merge_knn(left, right, cache_dir=str(tmp_path / "ray"), **options, **RAY)
    sent = fake_openai.chat_requests()[n_local:]
    assert n_local >= 4 and len(sent) == n_local and all(request.had_auth for request in sent)
    key = ["name_x", "name_y"]
    columns = [*key, "rerank_score", "is_match", "judge_error"]
    pd.testing.assert_frame_equal(local[columns].sort_values(key, ignore_index=True),
                                  distributed[columns].sort_values(key, ignore_index=True))
    stage = distributed.attrs["ltengine"]["report"]["rerank"]["stages"][0]
    assert stage["requests"] == len(sent) and stage["ray"]["tasks"] == len(sent), stage
    pids = {int(worker.split(":")[1]) for worker in stage["ray"]["workers"]}
    assert pids and os.getpid() not in pids  # sent from Ray workers, not from this process
    assert "ray" not in local.attrs["ltengine"]["report"]["rerank"]["stages"][0]
    # the cache is the run's: the same run again asks nothing
    again = lt.merge_knn(left, right, cache_dir=str(tmp_path / "ray"), **options, **RAY)
    assert len(fake_openai.chat_requests()) == n_local + len(sent)
    assert again["is_match"].equals(distributed["is_match"])
    # a key variable the workers do not have is a clear error, raised here from the worker's answer
    missing = {**options["rerank_options"], "api_key_env": "LTENGINE_KEY_NOT_SET_ANYWHERE"}
    with pytest.raises(ComponentError, match="LTENGINE_KEY_NOT_SET_ANYWHERE.*not set in the process"):
        lt.merge_knn(left, right, cache_dir=str(tmp_path / "none"), **{**options, "rerank_options": missing}, **RAY)


def test_ray_encoder_gives_the_local_vectors_chunk_by_chunk(tmp_path) -> None:
    """Ray encodes the chunks the Linker asks for (the sorted distinct texts, encode_chunk_size at a time), so its
    vectors are the local executor's bit for bit; each chunk is handed over once, then dropped; with the
    embedding cache on, chunks handed over already (so cached) are not encoded again."""
    from ltengine.engine.encoding import encode_texts, resolve_encoder
    from ltengine.execution.ray_encoding import RayEncoder
    from ltengine.execution.ray_session import ray_options
    from ltengine.plugins import get_host
    from ltengine.run import RunContext

    left, right = _tables()
    texts = np.asarray(list(right["name"]) * 2 + list(left["name"]), dtype=object)  # duplicates, unsorted
    config = lt.LinkConfig(progress=False, cache=True, cache_dir=str(tmp_path), encode_chunk_size=CHUNK)
    host = get_host()
    inner = resolve_encoder(host.registry, config)
    local = encode_texts(inner, texts, "document", RunContext(config.replace(cache=False), host))
    encoder = RayEncoder(inner, config, ray_options(RAY["executor_options"]))
    context = RunContext(config, host)
    encoder.prepare(texts, "document", context.cache("embeddings"))
    (run,) = encoder.runs["document"]
    assert encoder.stream is not None
    assert run["chunks"] == len(encoder.stream.waiting) == -(-len(set(texts)) // CHUNK) >= 2
    assert not encoder.held  # streamed: nothing is read before the Linker asks for it
    assert np.array_equal(encode_texts(encoder, texts, "document", context), local)  # bit for bit
    assert len(run["actors"]) >= 2, run
    assert encoder.stream is None and not encoder.held  # each chunk handed over once, then dropped
    assert encoder.most_held == 1  # in order: this process held one chunk at a time
    assert encoder.runs["document"] == [run]  # nothing was encoded on request
    encoder.prepare(texts, "query", context.cache("embeddings"))  # a symmetric encoder: the same chunks, cached
    assert "query" not in encoder.runs and not encoder.held
    # texts that were not prepared are encoded on request, as one chunk
    assert np.array_equal(encoder.encode(["omega sigma"], role="query"), inner.encode(["omega sigma"], role="query"))
    assert len(encoder.runs["query"]) == 1 and not encoder.held
    encoder.prepare(np.asarray(["alpha beta", "gamma delta"], dtype=object), "query")  # a side not linked: dropped
    encoder.forget()
    assert encoder.stream is None and not encoder.held


def test_bad_ray_encoding_option_says_what_replaced_it() -> None:
    left, right = _tables()
    with pytest.raises(ConfigError, match="encode_batch_size.*encode_chunk_size"):
        lt.merge(left, right, on="name", progress=False, executor="ray",
                 executor_options={"encode_batch_size": 64})


def test_encoding_actors_share_the_cpus() -> None:
    """By default the encoding actors share the node's CPUs (Ray gives each as many OpenMP threads, which the
    encoders follow): one actor on the tests' 2-CPU Ray gets both, as the local encoder would use both."""
    from ltengine.engine.encoding import encode_texts, resolve_encoder
    from ltengine.execution.ray_encoding import RayEncoder
    from ltengine.execution.ray_session import ray_options
    from ltengine.plugins import get_host
    from ltengine.run import RunContext

    _, right = _tables()
    texts = np.asarray(list(right["name"]), dtype=object)
    config = lt.LinkConfig(progress=False, cache=False, encode_chunk_size=CHUNK)
    host = get_host()
    inner = resolve_encoder(host.registry, config)
    local = encode_texts(inner, texts, "document", RunContext(config, host))
    for options, cpus in (({"encode_actors": 1}, 2), ({"encode_actors": 2}, 1),
                          ({"encode_actors": 1, "encode_cpus": 0.5}, 0.5)):
        encoder = RayEncoder(inner, config, ray_options({"num_cpus": 2, **options}))
        encoder.prepare(texts, "document")
        (run,) = encoder.runs["document"]
        assert np.array_equal(encode_texts(encoder, texts, "document", RunContext(config, host)), local)
        assert run["cpus_per_actor"] == cpus and len(run["actors"]) == options["encode_actors"], run
    with pytest.raises(ConfigError, match="encode_cpus must be a number >= 0"):
        ray_options({"encode_cpus": -1})
