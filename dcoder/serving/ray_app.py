"""``dcoder serve --ray``: the same app as a Ray Serve application, for more than one model copy.

Ray Serve's proxy takes the HTTP requests and hands each to a replica: a Ray actor that loads the
model itself and runs the app ``create_app`` builds, so tokens, limits, the queue and
Idempotency-Keys work as with plain ``dcoder serve`` (per replica). A replica that dies takes the
requests it was running with it; their clients get a 5xx or a broken connection and retry with
the same Idempotency-Key, and Ray starts a replica in its place. Ray comes with the ``ray`` extra
and is imported only here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields

from dcoder.errors import DcoderError
from dcoder.serving.server import ServeConfig, create_app

APP_NAME = "dcoder"
QUIET = {"log_level": "WARNING", "enable_access_log": False}  # Ray Serve logs each request at INFO


@dataclass(frozen=True)
class RayConfig:
    replicas: int = 1  # a fixed number of replicas, unless min_replicas and max_replicas are given
    min_replicas: int | None = None  # with max_replicas: Ray scales between them, by ongoing requests
    max_replicas: int | None = None
    target_requests: float = 2.0  # autoscaling: ongoing requests per replica Ray aims for
    gpus_per_replica: float = 0.0  # 0: the CPU; a fraction shares a GPU between replicas
    cpus_per_replica: float = 1.0
    address: str | None = None  # a running Ray cluster ("auto", "ray://head:10001"); None: start Ray here

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= 1024:
            raise DcoderError("--replicas must be from 1 to 1024")
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise DcoderError("autoscaling needs both --min-replicas and --max-replicas")
        if self.min_replicas is not None and not 0 <= self.min_replicas <= self.max_replicas <= 1024:
            raise DcoderError("--min-replicas and --max-replicas must satisfy 0 <= min <= max <= 1024 (and max >= 1)")
        if self.max_replicas == 0:
            raise DcoderError("--max-replicas must be at least 1")
        if not 0 < self.target_requests <= 1024:
            raise DcoderError("--target-requests must be in (0, 1024]")
        if not 0 <= self.gpus_per_replica <= 64:
            raise DcoderError("--gpus-per-replica must be from 0 to 64")
        if not 0 < self.cpus_per_replica <= 256:
            raise DcoderError("--cpus-per-replica must be in (0, 256]")

    def deployment_options(self, serve: ServeConfig) -> dict:
        """Ray Serve's options for the deployment. A replica takes its running requests (``--batch``)
        and its queue; Ray's proxies hold at most one more queue's worth, then answer 503."""
        options = {"ray_actor_options": {"num_cpus": self.cpus_per_replica, "num_gpus": self.gpus_per_replica},
                   "max_ongoing_requests": serve.queue_size + serve.batch, "max_queued_requests": serve.queue_size,
                   "health_check_period_s": 2, "graceful_shutdown_timeout_s": serve.timeout_s,
                   "max_constructor_retry_count": 3, "logging_config": QUIET}
        if self.min_replicas is None:
            options["num_replicas"] = self.replicas
        else:
            options["autoscaling_config"] = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                                             "target_ongoing_requests": self.target_requests}
        return options


def read_ray_config(path: str) -> dict:
    """The settings in a TOML file, named as RayConfig's fields (replicas = 2, gpus_per_replica = 1, ...)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise DcoderError(f"cannot read the Ray config {path}: {exc.strerror or exc.__class__.__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DcoderError(f"the Ray config {path} is not valid TOML: {exc}") from None
    known = {f.name: f.type for f in fields(RayConfig)}
    for key, value in raw.items():
        if key not in known:
            raise DcoderError(f"unknown key {key!r} in the Ray config {path} (known: {', '.join(known)})")
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (isinstance(value, str) if key == "address" else number and ("float" in known[key] or isinstance(value, int))):
            raise DcoderError(f"{key} in the Ray config {path} has the wrong type: {value!r}")
    return raw


class Replica:
    """One model copy: loads the model in the replica's process, then serves ``create_app``'s app."""

    def __init__(self, model: str, provider: str, cache_refresh: int, config: ServeConfig, model_id: str) -> None:
        from dcoder.engine.load import load_engine

        self.engine = load_engine(model, provider, cache_refresh=cache_refresh)
        self.config, self.model_id = config, model_id

    def __serve_build_asgi_app__(self):
        return create_app(self.engine, self.config, self.model_id)


def application(model: str, provider: str, cache_refresh: int, config: ServeConfig, model_id: str, ray_config: RayConfig):
    """The Ray Serve application, bound and ready for ``serve.run``."""
    from ray import serve

    ingress = serve.ingress()(Replica)
    deployment = serve.deployment(ingress, name="Dcoder", **ray_config.deployment_options(config))
    return deployment.bind(model, provider, cache_refresh, config, model_id)


def start(model: str, provider: str, cache_refresh: int, config: ServeConfig, model_id: str, ray_config: RayConfig,
          ray_init: dict | None = None) -> None:
    """Connect to Ray (or start it here), start Serve's proxy on ``config.host:port`` and deploy;
    returns once every replica is up."""
    try:
        import ray
        from ray import serve
    except ImportError:
        raise DcoderError("dcoder serve --ray needs Ray Serve: pip install 'dcoder-diffusion[serve,ray]'") from None
    if not ray.is_initialized():
        ray.init(address=ray_config.address, include_dashboard=False, logging_level="warning", **(ray_init or {}))
    serve.start(http_options={"host": config.host, "port": config.port}, logging_config=QUIET)
    try:
        serve.run(application(model, provider, cache_refresh, config, model_id, ray_config), name=APP_NAME,
                  route_prefix="/", blocking=False)
    except RuntimeError as exc:  # a replica failed to start (a model it cannot load, no GPU left, ...)
        raise DcoderError(f"the Ray Serve application did not start: {str(exc).splitlines()[0]}") from None
