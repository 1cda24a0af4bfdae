"""dcoder serve --ray: the app as a Ray Serve application on a real local Ray instance (2 CPUs),
two replicas of a tiny exported model. Eight clients send fills while one replica is killed; each
client retries a 5xx or a broken connection with the request's Idempotency-Key. Every request
must get exactly one answer, its own, and Ray must replace the replica. Bounded: each HTTP call
has a timeout, each request a retry budget, the whole run a deadline."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from serve_support import free_port  # noqa: E402

from dcoder.cli import main  # noqa: E402
from dcoder.errors import DcoderError  # noqa: E402
from dcoder.serving.ray_app import RayConfig, read_ray_config, start  # noqa: E402
from dcoder.serving.server import ServeConfig  # noqa: E402

CLIENTS, PER_CLIENT = 8, 4
TOKEN = "ray-test-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
RETRIES, RUN_S = 30, 120  # attempts per request; seconds for the whole run


def document(client: int, i: int) -> tuple[str, int]:
    text = f"def f{client}_{i}(a, b):\n    return \n\n\nprint(f{client}_{i}(1, 2))\n"
    return text, text.index("return ") + len("return ")


def replica_names() -> set[str]:
    import ray

    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("SERVE_REPLICA")}


@pytest.fixture(scope="module")
def cluster(exported):
    ray = pytest.importorskip("ray")
    serve = pytest.importorskip("ray.serve")
    port = free_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        start(str(exported("dream")), "cpu", 0, ServeConfig(port=port, timeout_s=30, token=TOKEN), "tiny",
              RayConfig(replicas=2, cpus_per_replica=0.5),
              ray_init={"num_cpus": 2, "num_gpus": 0, "object_store_memory": 80 << 20})
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            serve.shutdown()
            ray.shutdown()


def test_two_replicas_one_killed_every_request_answered_once(cluster):
    import ray

    assert len(replica_names()) == 2
    assert httpx.get(cluster + "/v1/models", timeout=30).status_code == 401  # the app's token check, behind Ray's proxy
    answers: dict[str, dict] = {}
    failures: list[str] = []  # what the clients saw before a retry
    lock = threading.Lock()
    stop_at = time.monotonic() + RUN_S

    def client(c: int) -> None:
        with httpx.Client(base_url=cluster, timeout=30, headers=AUTH) as http:
            for i in range(PER_CLIENT):
                text, cursor = document(c, i)
                key = f"req-{c}-{i}"
                body = {"text": text, "cursor": cursor, "max_tokens": 16, "sampler": {"steps": 16}}
                for _ in range(RETRIES):
                    if time.monotonic() > stop_at:
                        return
                    try:
                        r = http.post("/v1/infill", json=body, headers={"idempotency-key": key})
                    except httpx.TransportError as exc:  # the connection broke with the replica
                        with lock:
                            failures.append(type(exc).__name__)
                        time.sleep(0.2)
                        continue
                    if r.status_code < 500:  # the answer: the client takes the first that is not a 5xx
                        with lock:
                            answers[key] = {"status": r.status_code, **r.json()}
                        break
                    with lock:
                        failures.append(str(r.status_code))
                    time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    started = time.monotonic()
    while len(answers) < CLIENTS and time.monotonic() < stop_at:  # kill once the run is well under way
        time.sleep(0.05)
    # requests denoised together end together: the replicas are idle for a moment after a round,
    # so the kill waits half a round, into the next one, to find requests in flight
    time.sleep((time.monotonic() - started) / 2)
    killed = sorted(replica_names())[0]
    ray.kill(ray.get_actor(killed, namespace="serve"), no_restart=True)
    for t in threads:
        t.join(timeout=max(1.0, stop_at - time.monotonic()))

    assert len(answers) == CLIENTS * PER_CLIENT, f"lost: {CLIENTS * PER_CLIENT - len(answers)}; seen {failures}"
    for key, answer in answers.items():
        assert answer["status"] == 200, answer  # a retry is not refused (e.g. as a reused key)
        _, c, i = key.split("-")
        text, cursor = document(int(c), int(i))
        (edit,) = answer["edits"]  # its own document's fill, not another request's
        assert edit["start_offset"] == cursor and answer["text"] == text[:cursor] + edit["text"] + text[cursor:]
    assert failures, "the kill hit no request in flight: nothing was retried"
    # Ray puts a new replica in the killed one's place
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (len(replica_names()) == 2 and killed not in replica_names()):
        time.sleep(0.5)
    assert len(replica_names()) == 2 and killed not in replica_names()
    # a late duplicate (its answer lost in transit) gets the same answer again
    for c in range(CLIENTS):
        text, cursor = document(c, 0)
        body = {"text": text, "cursor": cursor, "max_tokens": 16, "sampler": {"steps": 16}}
        again = httpx.post(cluster + "/v1/infill", json=body, headers={**AUTH, "idempotency-key": f"req-{c}-0"},
                           timeout=30)
        assert again.status_code == 200 and again.json()["text"] == answers[f"req-{c}-0"]["text"]


def test_cli_ray_options(tmp_path, capsys):
    assert main(["serve", "--replicas", "2"]) == 2
    assert "--replicas goes with --ray" in capsys.readouterr().err
    bad = tmp_path / "ray.toml"
    bad.write_text("replica = 2\n")
    assert main(["serve", "--ray", "--ray-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'replica'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["serve", "--ray", "--min-replicas", "2"]) == 2
    assert "both --min-replicas and --max-replicas" in capsys.readouterr().err


def test_ray_settings_are_checked(tmp_path):
    with pytest.raises(DcoderError, match="both"):
        RayConfig(min_replicas=1)
    with pytest.raises(DcoderError, match="min <= max"):
        RayConfig(min_replicas=3, max_replicas=2)
    with pytest.raises(DcoderError, match="gpus-per-replica"):
        RayConfig(gpus_per_replica=-1)
    scaled = RayConfig(min_replicas=1, max_replicas=4, gpus_per_replica=0.5).deployment_options(ServeConfig())
    assert scaled["autoscaling_config"]["max_replicas"] == 4 and "num_replicas" not in scaled
    assert scaled["ray_actor_options"]["num_gpus"] == 0.5
    good = tmp_path / "ray.toml"
    good.write_text('replicas = 4\ngpus_per_replica = 1\naddress = "auto"\n')
    assert RayConfig(**read_ray_config(str(good))) == RayConfig(replicas=4, gpus_per_replica=1.0, address="auto")
    for text, message in [("replica = 2\n", "unknown key"), ('replicas = "2"\n', "wrong type"), ("replicas = \n", "TOML")]:
        good.write_text(text)
        with pytest.raises(DcoderError, match=message):
            read_ray_config(str(good))
