"""How a flow ends when there is nothing to do: a Completed run that says so, not a failure.

No model version yet, no new photos, too few colour photos, another crawl of the same area
running: the flow run ends *Completed* with the reason as its state message (visible in the
Prefect UI), and the caller gets the summary with ``status: skipped`` and the ``reason``.
"""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.states import Completed


def nothing_to_do(reason: str, summary: dict[str, Any] | None = None):
    get_run_logger().info("nothing to do: %s", reason)
    return Completed(message=f"nothing to do: {reason}",
                     data={**(summary or {}), "status": "skipped", "reason": reason})
