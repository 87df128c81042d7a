"""dynatrace-webhook: the admission webhook that decides whether a pod gets the Dynatrace OneAgent."""

__version__ = "0.1.0"
