"""The Kubernetes API, as the webhook uses it: the interface every API user codes against (``api``: ``Api``,
``ApiError``, ``pages``) and its implementation on the official client (``client``: ``KubeApi``)."""
