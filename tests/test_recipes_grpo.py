"""GRPO core switches against hand-computed values of the released formulas (verl-agent), GiGPO on toy
groups, the full fine-tuning path, recipe precedence and the ``--recipe`` flag."""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics

import numpy as np
import pytest
import torch

from agents.grpo import GRPOConfig, Sample, gigpo_step_advantages, gigpo_turn_advantages, grpo_turn_advantages
from agents.grpo.loss import grpo_token_loss, token_weights
from agents.grpo.update import PolicyUpdate
from agents.rollout import Episode, Turn
from tests.tiny_policy import tiny_policy

EPS = 1e-6


def _turn(observation: str = "", format_ok: bool = True, action_ok: bool = True, phase: str = "act") -> Turn:
    return Turn(phase, [1], [2], [0.0], "", "a", format_valid=format_ok, action_valid=action_ok, reward=0.0,
                observation=observation)  # fmt: skip


def _episode(group: int, won: bool, turns: list[Turn]) -> Episode:
    return Episode(task_id=f"t{group}", task_type="x", group=group, turns=turns, won=won)


def _flat(per_turn: list[list[float]]) -> list[float]:
    return [a for per in per_turn for a in per]


# -- group statistics and the invalid-action penalty ---------------------------------------------------------


def _penalty_batch() -> list[Episode]:
    return [
        _episode(0, True, [_turn(), _turn(format_ok=False)]),  # won; its 2nd answer broke the format
        _episode(0, False, [_turn(action_ok=False), _turn(), _turn()]),  # lost; one refused (inadmissible) action
        _episode(1, True, [_turn()]),  # a group of one turn
    ]


def test_released_group_stats_every_turn_a_sample_with_penalty_on_its_own_turn():
    """verl-agent: score_i = 10·won − 0.1·[turn i's format invalid]; mean and torch.std (n−1) over all turns of the
    task's group; a group with one sample gets mean 0 and std 1."""
    adv = grpo_turn_advantages(_penalty_batch(), 10.0, 0.1, True, group_stats="turn", invalid_scope="turn",
                               invalid_kind="format")  # fmt: skip
    scores = [10.0, 9.9, 0.0, 0.0, 0.0]  # the refused action is not a format error: no penalty
    mean, std = statistics.mean(scores), statistics.stdev(scores)
    assert _flat(adv[:2]) == pytest.approx([(s - mean) / (std + EPS) for s in scores])
    assert adv[2] == pytest.approx([10.0 / (1.0 + EPS)])  # the lone sample keeps its value
    centred = grpo_turn_advantages(_penalty_batch(), 10.0, 0.1, False, "turn", "turn", "format")
    assert _flat(centred[:2]) == pytest.approx([s - mean for s in scores])
    assert centred[2] == pytest.approx([10.0])


def test_default_group_stats_one_sample_per_episode_penalty_on_every_turn():
    """Ours: return = 10·won − 0.1·#(format or action invalid), shared by every turn; population std per group."""
    adv = grpo_turn_advantages(_penalty_batch(), 10.0, 0.1, True)
    returns = [9.9, -0.1]
    mean, std = statistics.mean(returns), statistics.pstdev(returns)
    expected = [(r - mean) / (std + EPS) for r in returns]
    assert adv[0] == pytest.approx([expected[0]] * 2)
    assert adv[1] == pytest.approx([expected[1]] * 3)
    assert adv[2] == [0.0]  # a lone rollout teaches nothing


def test_penalty_scope_and_kind_are_independent_switches():
    batch = _penalty_batch()
    # episode statistics with the turn-scoped penalty: each rollout's sample is the mean of its turns' returns
    adv = grpo_turn_advantages(batch, 10.0, 0.1, False, group_stats="episode", invalid_scope="turn",
                               invalid_kind="format_or_action")  # fmt: skip
    turn_returns = [[10.0, 9.9], [-0.1, 0.0, 0.0]]
    mean = statistics.mean([statistics.mean(r) for r in turn_returns])
    assert adv[:2] == [pytest.approx([r - mean for r in per]) for per in turn_returns]
    # every turn a sample, penalty on the whole episode
    adv = grpo_turn_advantages(batch, 10.0, 0.1, False, group_stats="turn", invalid_scope="episode",
                               invalid_kind="format")  # fmt: skip
    scores = [9.9, 9.9, 0.0, 0.0, 0.0]
    assert _flat(adv[:2]) == pytest.approx([s - statistics.mean(scores) for s in scores])


def test_only_act_turns_are_penalized():
    skill_turn = _turn(format_ok=False, phase="query")
    adv = grpo_turn_advantages([_episode(0, False, [skill_turn, _turn(format_ok=False)]), _episode(0, False, [_turn()])],
                               10.0, 1.0, False, "turn", "turn", "format")  # fmt: skip
    scores = [0.0, -1.0, 0.0]
    assert _flat(adv) == pytest.approx([s - statistics.mean(scores) for s in scores])


# -- GiGPO ---------------------------------------------------------------------------------------------------


def _gigpo_batch() -> list[Episode]:
    """One task, two rollouts meeting in states s0 and s1; a second task that also sees "s0"."""
    return [
        _episode(0, True, [_turn("s0"), _turn("s1"), _turn("s2")]),
        _episode(0, False, [_turn("s0"), _turn("s1", format_ok=False), _turn("s3")]),
        _episode(1, False, [_turn("s0")]),
    ]


def test_gigpo_step_advantages_by_hand():
    """Discounted returns (γ = 0.5): won rollout [2.5, 5, 10], lost [0, 0 − 0.1 (invalid), 0]; step groups by
    identical anchor observation within the task's group; torch.std (n−1); a lone anchor gets 0."""
    step = gigpo_step_advantages(_gigpo_batch(), reward_scale=10.0, gamma=0.5, invalid_penalty=0.1, use_std=True,
                                 invalid_kind="format")  # fmt: skip
    s0 = [2.5, 0.0]
    s1 = [5.0, -0.1]
    z = [(v - statistics.mean(g)) / (statistics.stdev(g) + EPS) for g in (s0, s1) for v in g]
    assert step[0] == pytest.approx([z[0], z[2], 0.0])
    assert step[1] == pytest.approx([z[1], z[3], 0.0])
    assert step[2] == [0.0]  # "s0" of another task is another step group, alone
    centred = gigpo_step_advantages(_gigpo_batch(), 10.0, 0.5, 0.1, use_std=False, invalid_kind="format")
    assert centred[0] == pytest.approx([1.25, 2.55, 0.0])
    assert centred[1] == pytest.approx([-1.25, -2.55, 0.0])


def test_gigpo_combines_episode_and_step_levels():
    batch = _gigpo_batch()
    settings = dict(reward_scale=10.0, invalid_penalty=0.1, use_std=False, group_stats="turn", invalid_scope="turn",
                    invalid_kind="format")  # fmt: skip
    episode = grpo_turn_advantages(batch, **settings)
    step = gigpo_step_advantages(batch, 10.0, 0.5, 0.1, False, "format")
    combined = gigpo_turn_advantages(batch, **settings, step_weight=0.7, gamma=0.5)
    assert _flat(combined) == pytest.approx([a + 0.7 * s for a, s in zip(_flat(episode), _flat(step), strict=True)])
    scores = [10.0, 10.0, 10.0, 0.0, -0.1, 0.0]  # the episode level is verl's GRPO over turns
    assert _flat(episode[:2]) == pytest.approx([s - statistics.mean(scores) for s in scores])


def test_gigpo_revisited_state_in_one_rollout_and_skill_phases():
    """A state seen twice in one rollout is one step group; non-act turns get no step advantage."""
    batch = [
        _episode(0, True, [_turn("x", phase="query"), _turn("a"), _turn("a"), _turn("b")]),
        _episode(0, False, [_turn("a")]),
    ]
    step = gigpo_step_advantages(batch, 10.0, 1.0, 0.0, use_std=False)
    a_returns = [10.0, 10.0, 0.0]
    mean = statistics.mean(a_returns)
    assert step[0] == pytest.approx([0.0, 10.0 - mean, 10.0 - mean, 0.0])
    assert step[1] == pytest.approx([0.0 - mean])


# -- the loss ------------------------------------------------------------------------------------------------


def _verl_policy_loss(logp, old, adv, clip, c):
    """verl's compute_policy_loss per token, written as in core_algos.py."""
    ratio = torch.exp(logp - old)
    l1 = -adv * ratio
    l2 = -adv * torch.clamp(ratio, 1 - clip, 1 + clip)
    clip1 = torch.maximum(l1, l2)
    clip2 = torch.min(-adv * c, clip1)
    return torch.where(adv < 0, clip2, clip1)


def test_dual_clip_by_hand_and_against_verl():
    logp = torch.log(torch.tensor([5.0, 5.0, 2.0, 0.5]))
    adv = torch.tensor([-1.0, 1.0, -1.0, -1.0])
    terms = grpo_token_loss(logp, torch.zeros(4), adv, dual_clip=3.0)
    # ratio 5, A=−1: min(−5, −1.2) = −5, floored at 3·A = −3; ratio 5, A=+1: clipped to 1.2; ratio 2: −2 > −3; 0.5: −0.8
    assert terms.policy.tolist() == pytest.approx([3.0, -1.2, 2.0, 0.8])
    assert terms.dual_clipped.tolist() == [True, False, False, False]
    off = grpo_token_loss(logp, torch.zeros(4), adv)
    assert off.policy.tolist() == pytest.approx([5.0, -1.2, 2.0, 0.8])
    gen = torch.Generator().manual_seed(0)
    logp, old, adv = (torch.randn(64, generator=gen) for _ in range(3))
    ours = grpo_token_loss(logp, old, adv, clip_low=0.2, clip_high=0.2, dual_clip=3.0).policy
    assert torch.allclose(ours, _verl_policy_loss(logp, old, adv, 0.2, 3.0), atol=1e-6)
    with pytest.raises(ValueError, match="dual_clip"):
        grpo_token_loss(logp, old, adv, dual_clip=0.5)


def test_loss_aggregation_weights_by_hand():
    """Two micro-batches of one mini-batch: losses [[1,2,3],[_,_,4]] and [[5,6]] (right-aligned responses)."""
    loss1, mask1 = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 4.0]]), torch.tensor([[1.0, 1, 1], [0, 0, 1]])
    loss2, mask2 = torch.tensor([[5.0, 6.0]]), torch.ones(1, 2)

    def total(mode):
        return sum(
            float((loss * token_weights(mask, mode, 6, 3, 2)).sum()) for loss, mask in ((loss1, mask1), (loss2, mask2))
        )

    assert total("token_mean") == pytest.approx(21 / 6)
    assert total("micro_token_mean") == pytest.approx((10 / 4 + 11 / 2) / 2)  # verl: token-mean / grad. accumulation
    assert total("seq_mean_token_mean") == pytest.approx((2 + 4 + 5.5) / 3)
    with pytest.raises(ValueError, match="loss aggregation"):
        token_weights(mask1, "sum", 6, 3, 2)  # type: ignore[arg-type]


def _samples() -> list[Sample]:
    rng = np.random.default_rng(1)
    return [
        Sample(rng.integers(3, 60, size=n).tolist(), rng.integers(3, 60, size=r).tolist(), a)
        for n, r, a in [(5, 3, 1.0), (7, 1, -1.0), (4, 4, 0.5), (6, 2, -0.5)]
    ]


def _grads(samples: list[Sample], **settings) -> list[torch.Tensor]:
    model, tokenizer = tiny_policy(seed=5)
    config = GRPOConfig(learning_rate=0.0, kl_coef=0.0, entropy_coef=0.0, max_grad_norm=1e9, **settings)
    PolicyUpdate(model, tokenizer, config)(samples)
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def test_micro_batch_token_mean_is_the_mean_of_micro_batch_means():
    """The update's gradient under ``micro_token_mean`` equals Σ_m 1/(n_m·M) Σ_{i∈m} ∇(token-sum of sample i)."""
    samples = _samples()
    per_sample = [
        [g * len(s.response_ids) for g in _grads([s], mini_batch_size=8, micro_batch_size=8)] for s in samples
    ]
    micros = [[0, 1], [2, 3]]
    expected = [
        sum(
            sum(per_sample[i][k] for i in micro) / (sum(len(samples[i].response_ids) for i in micro) * len(micros))
            for micro in micros
        )
        for k in range(len(per_sample[0]))
    ]
    got = _grads(samples, mini_batch_size=8, micro_batch_size=2, loss_agg="micro_token_mean")
    token_mean = _grads(samples, mini_batch_size=8, micro_batch_size=2)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(got, expected, strict=True))
    assert not all(torch.allclose(a, b, rtol=1e-3, atol=1e-6) for a, b in zip(got, token_mean, strict=True))


# -- parameterization: full fine-tuning ----------------------------------------------------------------------


def test_full_fine_tuning_trains_every_weight_against_a_frozen_reference():
    model, tokenizer = tiny_policy(seed=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    update = PolicyUpdate(model, tokenizer, GRPOConfig(lora_rank=0, learning_rate=1e-2, kl_coef=0.1))
    assert update.reference is not None and not update.uses_lora
    samples = _samples()
    ref_before = update.reference_logprobs(samples)
    update(samples)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed == [n for n, _ in model.named_parameters()]  # every weight moved (embeddings, norms, head)
    assert all(not p.requires_grad for p in update.reference.parameters())
    assert all(torch.equal(p, before[n]) for n, p in update.reference.named_parameters())
    assert torch.equal(update.reference_logprobs(samples), ref_before)
    no_kl = PolicyUpdate(tiny_policy(seed=2)[0], tokenizer, GRPOConfig(lora_rank=0, kl_coef=0.0))
    assert no_kl.reference is None  # no copy when the KL term is off


# -- recipes -------------------------------------------------------------------------------------------------


def _learner_configs() -> dict[str, type]:
    from agents.cli import LEARNERS, config_class

    return {name: config_class(name) for name in LEARNERS}


def test_verl_answer_rules_by_hand():
    """verl-agent's alfworld_projection / webshop_projection, case by case (their outputs worked out by hand)."""
    from skill_gym.envs.instructions import ThinkAction, VerlThinkAction

    verl, ours = VerlThinkAction(), ThinkAction()
    cases = [  # text, verl's (action, valid), ours
        ("<think>t</think><action>Go To Desk 1</action>", ("go to desk 1", True), ("Go To Desk 1", True)),
        ("<think>t</think><action>look</action><action>inventory</action>", ("look", True), ("inventory", True)),
        ("<action>look</action>", ("look", False), ("look", False)),  # no <think> pair: format invalid
        ("<THINK>t</THINK><action>look</action>", ("look", False), ("look", True)),  # verl: literal lower tags
        ("<think>思考</think><action>look</action>", ("look", False), ("look", True)),  # CJK
        ("<think>t</think>< action >look</ action >", ("hink>< action >look</ action >", False), ("look", True)),
        ("<think>t</think></action>look<action>", ("", True), ("", False)),  # closing tag first: empty
        ("I would go to desk 1 now, then look", ("ld go to desk 1 now, then look", False), ("", False)),
    ]
    for text, verl_expected, ours_expected in cases:
        assert verl.parse(text) == verl_expected, text
        assert ours.parse(text) == ours_expected, text
    assert VerlThinkAction(fallback_chars=20).parse("x" * 10 + "search for shoes now")[0] == "search for shoes now"
    assert verl.parse(None) == ("", False)  # type: ignore[arg-type]


def test_every_recipe_setting_is_a_config_field_with_a_valid_value():
    from agents.recipes import RECIPES, apply_recipe

    classes = _learner_configs()
    for recipe, parts in RECIPES.items():
        assert set(parts) == set(classes)
        for learner, cls in classes.items():
            fields = {f.name for f in dataclasses.fields(cls)}
            for part in (parts["grpo"], parts[learner]):
                for key, value in part.items():
                    keys = value if key.startswith("env:") else {key: value}
                    assert set(keys) <= fields, (recipe, learner, key)
            for env in ("SkillAlfworld-v0", "SkillWebShop-v0", "SkillSearchQA-v0"):
                config = cls(**apply_recipe(learner, recipe, {"env_id": env}))  # Literal values are checked
                assert config.recipe == recipe


def test_grpo_recipes_hold_switches_not_sizes():
    from agents.recipes import GRPO_RECIPES, SIZE_FIELDS

    for recipe in GRPO_RECIPES.values():
        assert not set(recipe) & SIZE_FIELDS


def test_recipe_precedence(monkeypatch):
    from agents.recipes import GRPO_RECIPES, RECIPES, apply_recipe, resolve_config

    grpo = {**GRPO_RECIPES["released"], "group_size": 8, "env:webshop": {"invalid_penalty": 0.5, "entropy_coef": 0.0}}
    monkeypatch.setitem(RECIPES["released"], "grpo", grpo)  # with a size and an env-specific part
    monkeypatch.setitem(RECIPES["released"], "skill1", {"kl_coef": 0.03, "invalid_penalty": 0.2, "top_k": 5,
                                                        "env:webshop": {"top_k": 3, "kl_coef": 0.04}})  # fmt: skip
    webshop = apply_recipe("skill1", "released", {"env_id": "SkillWebShop-v0", "top_k": 4})
    # learner beats GRPO, env-specific beats general, the user beats the recipe
    assert (webshop["invalid_penalty"], webshop["kl_coef"], webshop["entropy_coef"], webshop["top_k"]) == (
        0.5, 0.04, 0.0, 4)  # fmt: skip
    alfworld = apply_recipe("skill1", "released", {}, env_id="SkillAlfworld-v0")
    assert (alfworld["invalid_penalty"], alfworld["kl_coef"], alfworld["top_k"]) == (0.2, 0.03, 5)
    assert apply_recipe("grpo", "released", {"env_id": "WebShop-v0"})["kl_coef"] == 0.01  # other learners' parts: no
    assert apply_recipe("grpo", None, {"seed": 3}) == {"seed": 3}
    cpu = resolve_config("grpo", GRPOConfig, "cpu", "released", {"env_id": "WebShop-v0"})
    small = GRPOConfig.cpu_defaults()
    assert cpu.group_size == small.group_size  # the cpu preset's size wins over the recipe's
    assert (cpu.tasks_per_step, cpu.max_new_tokens) == (small.tasks_per_step, small.max_new_tokens)
    assert (cpu.lora_rank, cpu.learning_rate, cpu.group_stats, cpu.invalid_penalty) == (0, 1e-6, "turn", 0.5)
    assert cpu.recipe == "released"
    paper = resolve_config("grpo", GRPOConfig, "paper", "released", {"group_size": 4})
    assert paper.group_size == 4  # flags win over everything
    assert resolve_config("grpo", GRPOConfig, "paper", "released", {}).group_size == 8  # paper preset: recipe sizes
    assert resolve_config("grpo", GRPOConfig, "cpu", None, {}) == small
    # env keyword dicts merge: the recipe's answer format, the preset's step limit, the user's split
    merged = resolve_config("grpo", GRPOConfig, "cpu", "released", {"env_id": "Alfworld-v0",
                                                                     "env_kwargs": {"split": "train"}})  # fmt: skip
    assert merged.env_kwargs == {"answer_format": "verl", **small.env_kwargs, "split": "train"}
    assert apply_recipe("grpo", "released", {"env_id": "SearchQA-v0"})["env_kwargs"] == {"answer_format": "verl"}
    assert apply_recipe("grpo", "released", {"env_id": "Keyword-v0"}).get("env_kwargs") is None
    assert resolve_config("grpo", GRPOConfig, "cpu", "released", {"env_kwargs": {"answer_format": "tagged"}},
                          ).env_kwargs["answer_format"] == "tagged"  # fmt: skip
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        apply_recipe("grpo", "nope", {})
    monkeypatch.setitem(RECIPES["released"]["grpo"], "not_a_field", 1)
    with pytest.raises(ValueError, match="not_a_field"):
        resolve_config("grpo", GRPOConfig, "paper", "released", {})


def test_config_rejects_unknown_switch_values_and_records_the_recipe(tmp_path):
    with pytest.raises(ValueError, match="group_stats must be one of episode, turn"):
        GRPOConfig(group_stats="trajectory")  # type: ignore[arg-type]
    GRPOConfig(recipe="paper").save(tmp_path / "config.json")
    assert GRPOConfig.load(tmp_path / "config.json").recipe == "paper"


def _parser() -> argparse.ArgumentParser:
    from agents.cli import add_train_command

    parser = argparse.ArgumentParser()
    add_train_command(parser.add_subparsers())
    return parser


def test_cli_recipe_flag():
    from agents.cli import RECIPE_CHOICES, train_config
    from agents.recipes import recipe_names

    assert sorted(RECIPE_CHOICES) == recipe_names()
    parser = _parser()
    args = parser.parse_args(["train", "grpo", "--recipe", "released", "--preset", "cpu", "--group-stats", "episode",
                              "--advantage", "gigpo", "--env", "Keyword-v0"])  # fmt: skip
    config = train_config(args, args.preset)
    assert (config.recipe, config.group_stats, config.advantage, config.loss_agg) == (
        "released", "episode", "gigpo", "micro_token_mean")  # fmt: skip
    assert (config.group_size, config.env_id) == (GRPOConfig.cpu_defaults().group_size, "Keyword-v0")
    plain = train_config(parser.parse_args(["train", "skill0", "--dual-clip", "0"]), "paper")
    assert (plain.recipe, plain.dual_clip, plain.group_stats) == (None, 0.0, "episode")
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "grpo", "--recipe", "unreleased"])
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "grpo", "--loss-agg", "sum"])


# -- the trainer uses the switches ---------------------------------------------------------------------------


def test_trainer_gigpo_step_uses_the_switches(tmp_path):
    from agents.grpo import GRPOTrainer

    model, tokenizer = tiny_policy()
    config = GRPOConfig(env_id="Keyword-v0", env_kwargs={"answer_format": "plain"}, run_dir=str(tmp_path / "run"),
                        lora_rank=0, learning_rate=1e-3, total_steps=1, tasks_per_step=2, group_size=3,
                        max_new_tokens=2, kl_coef=0.0, progress=False, max_turns=3, advantage="gigpo",
                        group_stats="turn", invalid_penalty_scope="turn", invalid_kind="format", gigpo_gamma=0.9,
                        loss_agg="micro_token_mean", micro_batch_size=4)  # fmt: skip
    trainer = GRPOTrainer(config, model=model, tokenizer=tokenizer)
    try:
        episodes, _ = trainer.collect()
        expected = gigpo_turn_advantages(episodes, 10.0, 0.1, True, "turn", "turn", "format", 1.0, 0.9)
        assert trainer.turn_advantages(episodes) == expected
        metrics = trainer.train_step()
        assert math.isfinite(metrics["loss/total"]) and "loss/dual_clip_frac" in metrics
        assert metrics["adv/step_group_size"] >= 1.0  # the first turn of a task's rollouts shares one anchor
    finally:
        trainer.close()
    assert GRPOConfig.load(tmp_path / "run" / "config.json").advantage == "gigpo"
