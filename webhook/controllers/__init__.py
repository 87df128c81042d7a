"""Background work that talks to the Kubernetes API, each controller on the reconcile loop of ``loop``."""
