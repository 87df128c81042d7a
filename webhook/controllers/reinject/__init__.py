"""Automatic reinjection: one controller in four modules.

- ``controller``: the ``Reinjector`` (a leader-only Runnable): its keys on the reconcile loop (resync, sync,
  one namespace scan, one workload restart), what it found, and the restarts;
- ``scan``: one namespace read as metadata-only pages, its pods classified into workloads to restart;
- ``findings``: what is known of every namespace and workload, counted and reported once per outcome;
- ``verdict``: the pure parts: which reasons wait, who may be restarted, the restart record and patch, the
  verdict on one workload, the messages and Events.
"""
