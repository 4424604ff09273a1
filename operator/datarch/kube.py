"""The Kubernetes API client the operator and the CLI share: in a pod its service
account, else the kubeconfig (KUBECONFIG or ~/.kube/config). Configuration only."""

from __future__ import annotations

from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.config.config_exception import ConfigException

__all__ = ["ConfigException", "api_client"]


def api_client(pool_size: int = 4) -> client.ApiClient:
    """A client of its own (no global configuration); `pool_size` bounds its connections."""
    configuration = client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        kube_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)
