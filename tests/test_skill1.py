"""Skill1: per-phase credit assignment, library admission from successes, checkpoint/resume of the library."""

from __future__ import annotations

import numpy as np
import pytest

from agents.grpo.advantages import group_normalize
from agents.rollout import Episode, Turn
from agents.skill1 import Skill1Config, Skill1Trainer, skill1_turn_advantages
from skill_gym.library import Skill, SkillLibrary
from tests.scripted_policy import ScriptedKeywordAgent
from tests.tiny_policy import tiny_policy


def _turn(phase: str, valid: bool = True) -> Turn:
    return Turn(phase, [1], [2], [0.0], "", "", format_valid=True, action_valid=valid, reward=0.0)


def _episode(group, won, ndcg, u_hat, phases=("select", "rerank", "act", "act", "distill"), invalid=()):
    turns = [_turn(p, valid=i not in invalid) for i, p in enumerate(phases)]
    skill = {"ndcg": ndcg, "reranked": True, "u_hat": u_hat, "distill_reward": float(won) - u_hat}
    return Episode("t", "x", group, turns, won=won, skill=skill)


def test_reward_decomposition_by_hand():
    episodes = [
        _episode(0, True, ndcg=0.9, u_hat=0.5),
        _episode(0, False, ndcg=0.6, u_hat=0.7),
        _episode(0, True, ndcg=1.0, u_hat=0.2, invalid=(1,)),  # its rank turn could not be parsed
        _episode(1, False, ndcg=0.3, u_hat=0.0),
        _episode(1, False, ndcg=0.8, u_hat=0.4),
    ]
    adv = skill1_turn_advantages(episodes, lambda_rerank=0.3, lambda_distill=0.3, reward_scale=10.0,
                                 invalid_penalty=0.1, phase_invalid_penalty=0.1)  # fmt: skip
    outcome = group_normalize([10.0, 0.0, 10.0, 0.0, 0.0], [0, 0, 0, 1, 1])
    distill = group_normalize([0.5, -0.7, 0.8, 0.0, -0.4], [0, 0, 0, 1, 1])
    for i, per_turn in enumerate(adv):
        select, rerank, act1, act2, dist = per_turn
        assert select == pytest.approx(outcome[i]) and act1 == act2 == pytest.approx(outcome[i])
        assert dist == pytest.approx(0.3 * distill[i])
    assert adv[0][1] == pytest.approx(0.3 * 0.9)
    assert adv[1][1] == pytest.approx(0.3 * 0.6)
    assert adv[2][1] == pytest.approx(-0.1)  # invalid rank: no NDCG reward, only the penalty
    assert adv[3][0] == adv[4][0] == pytest.approx(0.0)  # a group with equal outcomes: no utilization signal
    baseline = skill1_turn_advantages(episodes, rerank_baseline="group_mean")
    assert baseline[3][1] == pytest.approx(0.3 * (0.3 - 0.55)) and baseline[4][1] == pytest.approx(0.3 * (0.8 - 0.55))
    zero = skill1_turn_advantages(episodes, lambda_rerank=0.0, lambda_distill=0.0)
    assert zero[0][1] == 0.0 and zero[0][4] == 0.0


def test_paper_credit_takes_the_grpo_core_switches():
    """``group_stats="turn"``: every act and query turn is a sample of its group (n−1 std), as the GRPO core does."""
    episodes = [
        _episode(0, True, 0.5, 0.5, phases=("select", "rerank", "act", "distill")),  # 2 outcome turns, return 10
        _episode(0, False, 0.5, 0.5, phases=("select", "rerank", "act", "act", "act", "distill")),  # 4, return 0
    ]
    default = skill1_turn_advantages(episodes)
    per_episode = group_normalize([10.0, 0.0], [0, 0])  # one sample per rollout: +1, -1
    assert [default[0][0], default[1][0]] == pytest.approx(per_episode.tolist())
    turn = skill1_turn_advantages(episodes, group_stats="turn", invalid_penalty=0.0)
    samples = np.array([10.0, 10.0, 0.0, 0.0, 0.0, 0.0])  # the six act/select turns; rerank/distill are not samples
    mean, std = samples.mean(), samples.std(ddof=1)
    assert turn[0][0] == turn[0][2] == pytest.approx((10 - mean) / (std + 1e-6))
    assert turn[1][0] == turn[1][4] == pytest.approx((0 - mean) / (std + 1e-6))
    assert turn[0][1] == default[0][1] and turn[0][3] == default[0][3]  # rerank and distill unchanged
    invalid_act = [_episode(0, True, 0.5, 0.5, phases=("select", "act", "act"), invalid=(2,)),
                   _episode(0, True, 0.5, 0.5, phases=("select", "act", "act"))]  # fmt: skip
    scoped = skill1_turn_advantages(invalid_act, group_stats="turn", invalid_scope="turn")
    assert scoped[0][2] < scoped[0][1] == scoped[1][1]  # the penalty lands on the invalid act turn only


def _trainer(tmp_path, agent_kwargs=None, **overrides) -> Skill1Trainer:
    model, tokenizer = tiny_policy()
    settings = dict(
        env_id="SkillKeyword-v0", run_dir=str(tmp_path / "run"), lora_rank=0, learning_rate=1e-3, total_steps=2,
        tasks_per_step=3, group_size=2, max_new_tokens=40, env_kwargs={"answer_format": "plain"}, kl_coef=0.0, entropy_coef=0.0,
        micro_batch_size=16, mini_batch_size=256, save_every=1, progress=False, max_turns=8, min_similarity=0.0,
        top_k=3, seed=0,
    )  # fmt: skip
    settings.update(overrides)
    agent = ScriptedKeywordAgent(tokenizer, **(agent_kwargs or {}))
    return Skill1Trainer(Skill1Config(**settings), model=model, tokenizer=tokenizer, backend=agent)


def test_every_phase_trains_with_its_advantage_and_only_successes_enter_the_library(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.train_step()
    with SkillLibrary(trainer.library_path) as lib:  # two more skills, so every query has candidates to rank
        for kind in ("spelling", "counting"):
            lib.admit(Skill(description=f"Word tasks about {kind}.", strategy=f"Think about {kind}.", env="keyword"))
    episodes, _ = trainer.collect()
    phases = {t.phase for e in episodes for t in e.turns}
    assert phases == {"select", "rerank", "act", "distill"}
    assert all(t.response_ids for e in episodes for t in e.turns)
    advantages = trainer.turn_advantages(episodes)
    for episode, per_turn in zip(episodes, advantages, strict=True):
        for turn, value in zip(episode.turns, per_turn, strict=True):
            if turn.phase == "rerank":
                assert value == pytest.approx(0.3 * episode.skill["ndcg"])
    metrics = trainer.update([s for s in _samples(episodes, advantages)])
    assert np.isfinite(metrics["loss/total"])
    with SkillLibrary(trainer.library_path) as lib:
        skills = lib.skills()
        distilled = [s for s in skills if s.source == "distilled"]
        assert distilled and all(s.provenance["won"] for s in distilled)
        assert all(s.env == "keyword" for s in skills)
    trainer.close()


def _samples(episodes, advantages):
    from agents.grpo import Sample

    for e, per_turn in zip(episodes, advantages, strict=True):
        for t, a in zip(e.turns, per_turn, strict=True):
            yield Sample(t.prompt_ids, t.response_ids, a, t.phase)


def test_checkpoint_and_resume_restore_the_library(tmp_path):
    trainer = _trainer(tmp_path)
    history = trainer.train()
    assert history[-1]["library/size"] > 0 and "skill/rerank_ndcg" in history[-1]
    with SkillLibrary(trainer.library_path) as lib:
        at_checkpoint = sorted(s.id for s in lib.skills())
    trainer.close()
    with SkillLibrary(trainer.library_path) as lib:  # the library moves on after the checkpoint ...
        lib.remove(at_checkpoint[:1])
    resumed = _trainer(tmp_path, resume=True, total_steps=3)
    assert resumed.step == 2
    with SkillLibrary(resumed.library_path) as lib:  # ... and resuming puts it back as it was
        assert sorted(s.id for s in lib.skills()) == at_checkpoint
    resumed.train()
    resumed.close()


def test_malformed_phase_outputs_are_penalized_and_logged(tmp_path):
    trainer = _trainer(tmp_path, agent_kwargs={"malformed": True}, total_steps=1)
    [metrics] = trainer.train()
    assert metrics["skill/invalid_query"] == 1.0 and metrics["skill/invalid_skill"] == 1.0
    assert metrics["library/added"] == 0.0
    trainer.close()


def test_ablation_switches_reach_the_env(tmp_path):
    for selection, distillation, phases in [("similarity", "policy", {"act", "distill"}),
                                            ("none", "none", {"act"}), ("policy", "none", {"select", "act"})]:  # fmt: skip
        trainer = _trainer(tmp_path / selection / distillation, selection=selection, distillation=distillation)
        episodes, _ = trainer.collect()
        assert {t.phase for e in episodes for t in e.turns} == phases
        trainer.close()
