"""``dynatrace-webhook init``: the init-container entry point.

The OneAgent code modules themselves are installed by the Dynatrace CSI driver or by Dynatrace's own
bootstrapper; this image only prepares the shared volume layout the injected containers mount
(``ld.so.preload`` and one ``container_<name>.conf`` per injected container) and exits 0.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def run_init(share_dir: Path) -> int:
    install_path = os.environ.get("INSTALLPATH", "/opt/dynatrace/oneagent-paas")
    try:
        containers = json.loads(os.environ.get("CONTAINER_INFO", "[]") or "[]")
    except ValueError:
        containers = []
    try:
        share_dir.mkdir(parents=True, exist_ok=True)
        (share_dir / "ld.so.preload").write_text(f"{install_path}/agent/lib64/liboneagentproc.so\n")
        for c in containers if isinstance(containers, list) else []:
            name = c.get("name") if isinstance(c, dict) else None
            if isinstance(name, str) and name and "/" not in name:
                (share_dir / f"container_{name}.conf").write_text(
                    f"[container]\ncontainerName {name}\nimageName {c.get('image', '')}\n"
                )
    except OSError as err:
        # a failed preparation must not keep the application from starting unless asked to
        print(f"install-oneagent: could not prepare {share_dir}: {err}")
        return 1 if os.environ.get("FAILURE_POLICY") == "fail" else 0
    print(f"install-oneagent: prepared {share_dir} for {len(containers)} container(s)")
    return 0
