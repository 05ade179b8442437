"""The CPU setting gives GRPO a learning signal: the real SmolLM2-135M answers Keyword tasks with listed words,
and writes skills as JSON given the skill phases' worked examples (Skill1's CPU preset).

Without the env's worked example SmolLM2-135M-Instruct writes sentences (or repeats the prompt) on every
Keyword task, greedy or at temperature 1.0, so every action is invalid and every group advantage is zero.
With it (the default), most greedy answers and a good share of sampled ones are admissible words.
"""

from __future__ import annotations

import pytest

from agents.evaluation import evaluate

pytestmark = pytest.mark.slow

SETTING = {"answer_format": "plain", "max_steps": 1}


@pytest.fixture(scope="module")
def smollm2():
    from agents.backends.hf import TransformersBackend, load_policy

    model, tokenizer = load_policy(None)
    return TransformersBackend(model, tokenizer, batch_size=18)


def _valid_rate(backend, temperature: float, **env_kwargs) -> float:
    result = evaluate(backend, "Keyword-v0", env_kwargs={**SETTING, **env_kwargs}, num_envs=18,
                      temperature=temperature, max_new_tokens=8, seed=0)  # fmt: skip
    turns = [t for e in result.episodes for t in e.turns]
    assert len(turns) == 18
    return sum(t.action_valid for t in turns) / len(turns)


def test_smollm2_answers_with_listed_words_given_the_demonstration(smollm2):
    assert _valid_rate(smollm2, 0.0) >= 0.6  # measured 0.94 (17 of 18)
    assert _valid_rate(smollm2, 1.0) >= 0.15  # measured 0.33 over 36 samples; 0 without the example


def test_without_the_demonstration_it_writes_sentences(smollm2):
    assert _valid_rate(smollm2, 0.0, demonstration=False) <= 0.2  # measured 0.0: it repeats the intro


def _valid_skill_rate(backend, library, **env_kwargs) -> float:
    result = evaluate(backend, "SkillKeyword-v0", n_tasks=6, episodes_per_task=3, num_envs=18, temperature=1.0,
                      max_new_tokens=96, seed=0, env_kwargs={**SETTING, "library": str(library), "read_only": False,
                                                             "admit_on": "always", **env_kwargs})  # fmt: skip
    turns = [t for e in result.episodes for t in e.turns if t.phase == "distill"]
    assert len(turns) == 18
    return sum(t.action_valid for t in turns) / len(turns)


def test_smollm2_writes_skills_as_json_given_the_skill_phase_demonstrations(smollm2, tmp_path):
    assert _valid_skill_rate(smollm2, tmp_path / "with.sqlite", demonstrations=True) >= 0.2  # measured 7 of 18
    assert _valid_skill_rate(smollm2, tmp_path / "without.sqlite") <= 0.1  # measured 0 of 18: prose, not JSON
