"""lensserve client: the log-evidence of a served lens model from any machine (numpy, msgpack, httpx).

    from client import Client
    with Client("http://127.0.0.1:8000", "mge", token=...) as client:
        cube = np.random.default_rng(0).uniform(size=(64, client.model.n_params))
        log_evidence = client.log_evidence(client.model.prior_transform(cube))   # (64,)

Sampler adapters live in `client.samplers` (nautilus, UltraNest, dynesty) and
`client.gradients` (a JAX log-density with a custom VJP).
"""

from client.aio import AsyncClient
from client.errors import ServiceError, ServiceUnavailable
from client.fixed import FixedParameters
from client.model import Limits, ModelDescription
from client.protocol import CallStats, Evaluation, RetryPolicy
from client.sync import Client

__all__ = [
    "AsyncClient",
    "CallStats",
    "Client",
    "Evaluation",
    "FixedParameters",
    "Limits",
    "ModelDescription",
    "RetryPolicy",
    "ServiceError",
    "ServiceUnavailable",
]
