"""Skill1 then SKILL0 in one run: both stages, resume inside each, stage 2's initial policy, bad libraries, the CLI."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from agents.grpo.trainer import GRPOTrainer
from agents.skill0 import Skill0Trainer
from agents.skill1 import Skill1Trainer
from agents.skill1to0 import Skill1To0Config, Skill1To0Trainer
from agents.skill1to0.distilling import DistillingSkill0Trainer
from skill_gym.library import SkillLibrary, SkillValidationError
from skill_gym.skill_env import StaticSkillSet
from skill_gym.skill_env.parsing import PHASE_FORMATS
from tests.scripted_policy import ScriptedKeywordAgent
from tests.tiny_policy import tiny_policy


class SeededAgent(ScriptedKeywordAgent):
    """The scripted agent drawing from each request's seed: a resumed run replays what an uninterrupted one did."""

    request_seeds = True

    def generate(self, prompts, sampling):
        if sampling.seed is not None:
            self.rng = np.random.default_rng(sampling.seed)
        return super().generate(prompts, sampling)


class Killed(Exception):
    """The process "dies" after a checkpoint."""


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """The tiny random policy as a model folder: the base model of every run here."""
    model, tokenizer = tiny_policy()
    folder = tmp_path_factory.mktemp("base")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _config(run_dir, base_model, **overrides) -> Skill1To0Config:
    settings = dict(
        env_id="SkillKeyword-v0", run_dir=str(run_dir), model=str(base_model), lora_rank=0, learning_rate=1e-3,
        stage1_steps=2, stage2_steps=4, tasks_per_step=3, group_size=2, max_new_tokens=40,
        env_kwargs={"answer_format": "plain"}, kl_coef=0.0, entropy_coef=0.0, micro_batch_size=16, save_every=1,
        progress=False, max_turns=8, min_similarity=0.0, top_k=3, test_freq=2, budget_schedule=[3, 0],
        min_selected=0, seed=0,
    )  # fmt: skip
    settings.update(overrides)
    return Skill1To0Config(**settings)


def _run(config: Skill1To0Config) -> list[dict]:
    trainer = Skill1To0Trainer(config, backend=SeededAgent(tiny_policy()[1], p_correct=0.6))
    try:
        return trainer.train()
    finally:
        trainer.close()


@contextlib.contextmanager
def _killed_after(learner: type, step: int):
    """``learner``'s run dies right after the checkpoint of ``step`` (save_every=1)."""
    original = GRPOTrainer.train_step

    def step_then_die(self):
        metrics = original(self)
        if isinstance(self, learner) and self.step == step:
            raise Killed
        return metrics

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GRPOTrainer, "train_step", step_then_die)
        with pytest.raises(Killed):
            yield


def _logged(run_dir) -> dict[str, list[dict]]:
    """Each stage's metrics.jsonl, timings left out."""
    out = {}
    for stage in ("stage1", "stage2"):
        lines = [json.loads(line) for line in (run_dir / stage / "metrics.jsonl").read_text().splitlines()]
        out[stage] = [{k: v for k, v in m.items() if not k.startswith("perf/")} for m in lines]
    return out


def test_two_stages_resumed_inside_each_match_an_uninterrupted_run(tmp_path, base_model):
    straight = tmp_path / "straight"
    history = _run(_config(straight, base_model))
    stages = json.loads((straight / "stages.json").read_text())
    assert list(stages) == ["stage1", "curriculum", "stage2"]
    assert stages["stage1"]["step"] == 2 and stages["stage1"]["last"]["library/size"] > 0
    assert stages["curriculum"]["files"]["general_skills"]
    skills = StaticSkillSet(straight / "curriculum")  # the files stage 2 read, with their provenance
    assert "general_skills" in skills.files
    provenance = json.loads((straight / "curriculum" / "skill_mapping.json").read_text())["provenance"]["source"]
    assert provenance["stage1_step"] == 2 and provenance["library"].endswith("stage1/library.sqlite")
    assert stages["stage2"]["step"] == 4 and stages["stage2"]["active"] == []  # withdrawn to zero skills
    final = stages["stage2"]["final"]
    assert 0.0 <= final["final/success/all"] <= 1.0 and history[-1] == {"stage": 2, "step": 4, **final}
    logged = _logged(straight)
    assert [m["step"] for m in logged["stage2"]] == [0, 1, 2, 3, 4, 4]  # step-0 validation ... final evaluation
    assert logged["stage2"][-1] == {"step": 4, **final}
    assert logged["stage2"][2]["curriculum/budget"] == 3 and logged["stage2"][4]["curriculum/budget"] == 0
    assert final["final/prompt_tokens"] == pytest.approx(logged["stage2"][4]["val/prompt_tokens_without_skills"])

    resumed = tmp_path / "resumed"
    with _killed_after(Skill1Trainer, 1):
        _run(_config(resumed, base_model))
    assert not (resumed / "stages.json").exists()
    with _killed_after(Skill0Trainer, 3):
        _run(_config(resumed, base_model, resume=True))
    assert list(json.loads((resumed / "stages.json").read_text())) == ["stage1", "curriculum"]
    rest = _run(_config(resumed, base_model, resume=True))
    assert [m["step"] for m in rest] == [4, 4] and all(m["stage"] == 2 for m in rest)
    for stage, lines in _logged(resumed).items():
        assert len(lines) == len(logged[stage])
        for a, b in zip(lines, logged[stage], strict=True):
            assert a == pytest.approx(b, abs=1e-6), f"{stage} step {a['step']}"
    again = json.loads((resumed / "stages.json").read_text())
    assert again["stage2"]["final"] == pytest.approx(final) and again["curriculum"]["left_out"] == stages[
        "curriculum"]["left_out"]  # fmt: skip
    for name in stages["curriculum"]["files"]:  # the same skills, but for their ids (drawn anew)
        texts = [re.sub(r"sk-[0-9a-f]+", "ID", (run / "curriculum" / f"{name}.md").read_text().replace(str(run), "RUN"))
                 for run in (straight, resumed)]  # fmt: skip
        assert texts[0] == texts[1]
    assert _run(_config(resumed, base_model, resume=True)) == []  # everything is done
    with pytest.raises(ValueError, match=r"holds a two-stage run .*pass resume=True"):
        _run(_config(resumed, base_model))


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


GENERAL_ALONE = "ignore:stage 2's curriculum .* holds the general file alone"
"""After one stage-1 step the scripted skills (near-identical descriptions) make one cluster: the general file alone."""


@pytest.mark.filterwarnings(GENERAL_ALONE)
@pytest.mark.parametrize("init", ["stage1", "base"])
def test_stage2_starts_from_stage1s_policy_or_the_base_model(tmp_path, base_model, init):
    seen: dict[str, dict[str, torch.Tensor]] = {}
    close, start = Skill1Trainer.close, Skill0Trainer.__init__

    def close_stage1(self):
        seen["stage1_final"] = _weights(self.model)
        close(self)

    def start_stage2(self, *args, **kwargs):
        start(self, *args, **kwargs)
        seen["stage2_initial"] = _weights(self.model)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Skill1Trainer, "close", close_stage1)
        patch.setattr(Skill0Trainer, "__init__", start_stage2)
        _run(_config(tmp_path, base_model, stage1_steps=1, stage2_steps=2, test_freq=1, budget_schedule=[1, 0],
                     stage2_init=init))  # fmt: skip
    base = _weights(tiny_policy()[0])
    assert not _same(seen["stage1_final"], base)  # stage 1 trained
    stage2 = json.loads((tmp_path / "stage2" / "config.json").read_text())
    if init == "stage1":
        assert _same(seen["stage2_initial"], seen["stage1_final"])
        assert stage2["model"] == str(tmp_path / "stage1" / "policy")
    else:
        assert _same(seen["stage2_initial"], base) and not (tmp_path / "stage1" / "policy").exists()
        assert stage2["model"] == str(base_model)


@pytest.mark.filterwarnings(GENERAL_ALONE)
@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"distillation": "none"}, r"the library has no skills.*--stage1-steps, which continues stage 1 [^,]*\)"),
        ({"min_selected": 2}, r"selected at least 2 times .*--stage1-steps.*, or a lower --min-selected \(now 2\)"),
        ({"max_tokens": 1}, r"longer than the budget of 1 tokens \(1 left out\); raise max_tokens.*--stage1-steps"),
    ],
    ids=["empty", "unsupported", "huge-skills"],
)
def test_a_library_without_a_curriculum_stops_the_run_with_the_reason(tmp_path, base_model, settings, reason):
    config = _config(tmp_path, base_model, stage1_steps=1, stage2_steps=2, test_freq=1, budget_schedule=[1, 0])
    with pytest.raises(SkillValidationError, match=f"stage 2 cannot start: .*{reason}.*--resume"):
        _run(dataclasses.replace(config, **settings))
    assert list(json.loads((tmp_path / "stages.json").read_text())) == ["stage1"]  # stage 1 is kept
    assert not (tmp_path / "curriculum").exists() and not (tmp_path / "stage2").exists()
    if settings == {"distillation": "none"}:  # a longer stage 1 continues the finished one
        with pytest.raises(SkillValidationError, match="library has no skills"):
            _run(dataclasses.replace(config, **settings, stage1_steps=2, resume=True))
        assert [json.loads(line)["step"] for line in (tmp_path / "stage1" / "metrics.jsonl").open()] == [1, 2]
    if settings == {"min_selected": 2}:  # the hint works: stage 1 is not run again
        _run(_config(tmp_path, base_model, stage1_steps=1, stage2_steps=2, test_freq=1, budget_schedule=[1, 0],
                     resume=True))  # fmt: skip
        assert len((tmp_path / "stage1" / "metrics.jsonl").read_text().splitlines()) == 1
        assert json.loads((tmp_path / "stages.json").read_text())["stage2"]["active"] == []


def test_one_task_type_gives_the_general_file_alone_with_a_warning(tmp_path, base_model):
    config = _config(tmp_path, base_model, stage1_steps=2, stage2_steps=2, test_freq=1, budget_schedule=[1, 0],
                     env_kwargs={"answer_format": "plain", "task_types": ["opposite"]})  # fmt: skip
    with pytest.warns(UserWarning, match="holds the general file alone"):
        _run(config)
    assert sorted(StaticSkillSet(tmp_path / "curriculum").files) == ["general_skills"]


def test_a_schedule_that_keeps_skills_is_refused_before_training(tmp_path, base_model):
    for settings in ({"budget_schedule": [3, 1]}, {"stage2_steps": 3, "test_freq": 2}):
        with pytest.raises(ValueError, match="stage 2 must withdraw every skill file"):
            Skill1To0Trainer(_config(tmp_path, base_model, **settings))
    assert not tmp_path.joinpath("config.json").exists()


def test_the_cli_builds_the_two_stage_config():
    from agents.cli import train_config
    from skill_gym.cli import build_parser

    argv = ["train", "skill1to0", "--env", "SkillKeyword-v0", "--stage1-steps", "3", "--stage2-steps", "6",
            "--stage2-init", "base", "--min-selected", "1", "--budget-schedule", "[2,0]", "--test-freq", "3"]  # fmt: skip
    config = train_config(build_parser().parse_args(argv), "cpu")
    assert (config.stage1_steps, config.stage2_steps, config.total_steps, config.stage2_init) == (3, 6, 9, "base")
    assert (config.min_selected, config.max_tokens, config.budget_schedule) == (1, 400, [2, 0])
    assert config.rules().min_selected == 1 and config.max_new_tokens == 48  # the cpu preset's sizes
    stage1, stage2 = config.stage1_config(), config.stage2_config("skills", None)
    assert (stage1.total_steps, stage1.run_dir) == (3, "runs/skill1to0/stage1")
    assert (stage2.total_steps, stage2.run_dir, stage2.mode, stage2.static_dir) == (6, "runs/skill1to0/stage2",
                                                                                   "curriculum", "skills")  # fmt: skip
    released = train_config(build_parser().parse_args(["train", "skill1to0", "--recipe", "released"]), "paper")
    assert (released.credit, released.step0_budget, released.validation_tasks, released.history_length) == (
        "released", "last", 128, 2)  # fmt: skip
    for bad in (["--stage2-init", "random"], ["--total-steps", "3"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", "skill1to0", *bad])
    own = train_config(build_parser().parse_args([*argv, "--stage2-grpo", '{"kl_coef": 0.0, "group_size": 8}',
                                                  "--stage2-distill"]), "cpu")  # fmt: skip
    stage1, stage2 = own.stage1_config(), own.stage2_config("skills", None)
    assert (stage1.kl_coef, stage1.group_size, stage2.kl_coef, stage2.group_size) == (0.01, 2, 0.0, 8)
    assert stage2.learning_rate == stage1.learning_rate and own.stage2_distill  # the rest is shared
    for bad in ({"model": "other"}, {"lambda_distill": 0.0}, {"group_size": 0}):
        with pytest.raises(ValueError, match=r"stage2_grpo|group_size"):
            dataclasses.replace(own, stage2_grpo=bad)


def test_the_finished_run_plays_on_the_leaderboard_as_a_trained_agent_without_skills(tmp_path, base_model):
    from benchmarks.leaderboard.report import write_report
    from benchmarks.leaderboard.runner import RunConfig, run_leaderboard
    from benchmarks.leaderboard.specs import parse_agents
    from benchmarks.leaderboard.suites import parse_suite
    from benchmarks.leaderboard.tables import build_tables
    from benchmarks.leaderboard.transcripts import iter_transcripts

    run = tmp_path / "two-stage"
    _run(_config(run, base_model))
    out = tmp_path / "board"
    [entry] = parse_agents([f"skill1to0:{run}"])
    summary = run_leaderboard([entry], [parse_suite("keyword")], RunConfig(out, episodes=3, num_envs=3, progress=False))
    assert summary.errors == [] and summary.played == 3
    transcripts = [t for t, _ in iter_transcripts(out)]
    assert {t["header"]["env_id"] for t in transcripts} == {"Keyword-v0"}  # the base env: no skills, no retrieval
    assert all(t["result"]["library_size"] == 0 and not t["result"]["failed"] for t in transcripts)
    [row] = build_tables(out, reported=[])["suites"]["keyword"]["rows"]
    assert row["kind"] == "trained, no skills at inference" and row["source"] == "ours"
    write_report(out)
    assert "ours: trained, no skills at inference" in (out / "leaderboard.md").read_text()

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "stages.json").write_text(json.dumps({"stage1": {}, "curriculum": {}}))
    [entry] = parse_agents([f"skill1to0:{unfinished}"])
    summary = run_leaderboard([entry], [parse_suite("keyword")], RunConfig(tmp_path / "b2", episodes=1, progress=False))
    assert summary.played == 0 and "stage 2 of" in summary.errors[0] and "has not finished" in summary.errors[0]


class ReflectingAgent(SeededAgent):
    """Once ``reflect`` is on, writes skills of another kind (ones stage 1's library does not hold)."""

    reflect = False

    def text_for(self, content: str) -> str:
        text = super().text_for(content)
        if self.reflect and PHASE_FORMATS["distill"].instruction in content and text.startswith("{"):
            kind = json.loads(text)["description"].split()[3]
            text = json.dumps({"description": f"Reading the {kind} files first pays off.",
                               "strategy": f"Check the skill file of the {kind} task type, then answer."})  # fmt: skip
        return text


def _run_reflecting(config: Skill1To0Config) -> list[dict]:
    """A run whose policy writes new kinds of skills in stage 2."""
    agent = ReflectingAgent(tiny_policy()[1], p_correct=0.6)
    start = DistillingSkill0Trainer.__init__

    def start_reflecting(self, *args, **kwargs):
        agent.reflect = True
        start(self, *args, **kwargs)

    trainer = Skill1To0Trainer(config, backend=agent)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(DistillingSkill0Trainer, "__init__", start_reflecting)
            return trainer.train()
    finally:
        trainer.close()


def _library_rows(path) -> list[tuple]:
    with SkillLibrary(path) as library:
        return sorted((s.description, s.task_type, s.n_selected, s.n_success, round(s.utility, 6))
                      for s in library.skills())  # fmt: skip


def test_the_one_stage_option_keeps_distilling_and_exports_again_at_each_decision(tmp_path, base_model):
    one_stage = {"stage2_distill": True}  # contrast attempts in each env's memory, which checkpoints keep
    straight = tmp_path / "straight"
    _run_reflecting(_config(straight, base_model, **one_stage))
    stages = json.loads((straight / "stages.json").read_text())
    first, second = _library_rows(stages["stage1"]["library"]), _library_rows(straight / "stage2" / "library.sqlite")
    assert not any("files first" in row[0] for row in first)  # stage 1's library is left as it was
    written = [row for row in second if "files first" in row[0]]
    assert written and len(second) > len(first)  # stage 2 distilled into its copy
    shown = {row[0]: row for row in second}
    assert any(shown[row[0]][2] > row[2] for row in first)  # skills shown from the files count as selected
    exports = sorted(p.name for p in (straight / "stage2" / "curriculum").iterdir())
    assert exports == ["step_000002"]  # the decision at step 4 (budget 0) exports nothing
    mapping = json.loads((straight / "stage2" / "curriculum" / "step_000002" / "skill_mapping.json").read_text())
    assert mapping["provenance"]["source"]["stage2_step"] == 2
    assert "files first" in "".join(
        p.read_text() for p in (straight / "stage2" / "curriculum" / "step_000002").glob("*.md")
    )
    assert stages["stage2"]["files"].endswith("step_000002") and stages["stage2"]["active"] == []
    logged = _logged(straight)["stage2"]
    assert logged[2]["reexport/folder"] == "step_000002" and logged[2]["reexport/skills"] >= 1
    assert logged[1]["library/size"] >= len(first) and "skill/invalid_skill" in logged[1]

    resumed = tmp_path / "resumed"
    with _killed_after(Skill0Trainer, 3):
        _run_reflecting(_config(resumed, base_model, **one_stage))
    _run_reflecting(_config(resumed, base_model, **one_stage, resume=True))
    again = _logged(resumed)["stage2"]
    assert len(again) == len(logged)
    for a, b in zip(again, logged, strict=True):
        assert a == pytest.approx(b, abs=1e-6), f"step {a['step']}"
    assert _library_rows(resumed / "stage2" / "library.sqlite") == second


def test_a_run_reuses_another_runs_finished_stage1_and_its_stage2_matches(tmp_path, base_model):
    source = tmp_path / "source"
    _run(_config(source, base_model))
    before = _library_rows(source / "stage1" / "library.sqlite")
    forked = tmp_path / "forked"
    history = _run(_config(forked, base_model, stage1_from=str(source), progress=True))  # a runtime setting may differ
    assert history and all(m["stage"] == 2 for m in history)  # stage 1 was not trained again
    stages = json.loads((forked / "stages.json").read_text())
    assert stages["stage1"]["from"] == str(source.resolve()) and stages["stage1"]["step"] == 2
    assert stages["stage1"]["library"] == str((forked / "stage1" / "library.sqlite").resolve())
    assert stages["stage1"]["policy"] == str((forked / "stage1" / "policy").resolve())
    assert _library_rows(forked / "stage1" / "library.sqlite") == before == _library_rows(
        source / "stage1" / "library.sqlite")  # fmt: skip
    ours, theirs = _logged(forked), _logged(source)
    assert ours["stage1"] == theirs["stage1"] and len(ours["stage2"]) == len(theirs["stage2"])  # stage 1's, copied
    for a, b in zip(ours["stage2"], theirs["stage2"], strict=True):  # the same stage 1, so the same stage 2
        assert a == pytest.approx(b, abs=1e-6), f"stage 2 step {a['step']}"
    assert stages["stage2"]["final"] == pytest.approx(
        json.loads((source / "stages.json").read_text())["stage2"]["final"]
    )
    assert _run(_config(forked, base_model, stage1_from=str(source), resume=True)) == []  # resumes as any run


@pytest.mark.parametrize(
    ("source", "overrides", "reason"),
    [
        ("missing", {}, r"no finished stage 1 there"),
        ("done", {"stage1_steps": 3}, r"its stage 1 ran 2 steps, this run's stage1_steps is 3"),
        ("done", {"seed": 1}, r"learned with other settings \(seed: 0 there, 1 here\)"),
        ("base", {}, r"stage 2 starts from stage 1's policy, but that run saved none"),
    ],
)
def test_reusing_a_stage1_that_does_not_fit_is_refused_with_the_reason(tmp_path, base_model, source, overrides, reason):
    run = tmp_path / "source"
    if source != "missing":
        _run(_config(run, base_model, **({"stage2_init": "base"} if source == "base" else {})))
    with pytest.raises(ValueError, match=reason):
        _run(_config(tmp_path / "forked", base_model, stage1_from=str(run), **overrides))
    assert not (tmp_path / "forked" / "stages.json").exists()
