"""The webhook's view of the cluster: DynaKubes and namespaces, answered from memory."""

from webhook.state.store import Store

__all__ = ["Store"]
