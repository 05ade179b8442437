"""A run's metrics: one JSON line per step, TensorBoard scalars, and W&B when configured.

This module holds :class:`RunLogger`. ``metrics.jsonl`` is always written; TensorBoard events go to
``<run_dir>/tensorboard`` when ``tensorboard`` is installed; Weights & Biases is used when a project is
named and ``wandb`` is installed (otherwise silently skipped, as the other two never are).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["RunLogger"]


class RunLogger:
    """Writes each step's metrics to ``<run_dir>/metrics.jsonl``, TensorBoard and (optionally) W&B."""

    def __init__(self, run_dir: str | Path, wandb_project: str | None = None, wandb_config: dict | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.wandb_project = wandb_project
        self.wandb_config = wandb_config or {}
        self._writer: Any = None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(metrics) + "\n")
        writer = self._tensorboard()
        if writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and key != "step":
                    writer.add_scalar(key, value, step)
            writer.flush()
        if self.wandb_project:
            self._wandb(metrics, step)

    def close(self) -> None:
        if self._writer:
            self._writer.close()

    def _tensorboard(self) -> Any:
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: JSONL only
                self._writer = False
                return None
            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        return self._writer or None

    def _wandb(self, metrics: dict[str, Any], step: int) -> None:
        try:
            import wandb
        except ImportError:
            return
        if wandb.run is None:
            wandb.init(project=self.wandb_project, config=self.wandb_config, dir=str(self.run_dir))
        wandb.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)
