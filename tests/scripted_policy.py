"""A scripted agent for Keyword-v0 skill envs: a real Backend whose texts follow a fixed rule.

It answers each phase in the expected format (query, rank, a word, a JSON skill) and picks the
right word with probability ``p_correct``, so learner tests see successes and failures
deterministically. It tells the phases apart by the answer formats the skill env declares
(``PHASE_FORMATS``) and the task by the env's own question text, never by the prompt builder's
wording. Token ids come from the given tokenizer, so a model can be trained on them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from agents.backends.base import ChatPrompt, Generation, SamplingConfig, StaticBackend
from skill_gym.envs.keyword import TASKS
from skill_gym.skill_env.parsing import PHASE_FORMATS

_BY_QUESTION = {(t["task_type"], t["word"]): t for t in TASKS}
_QUESTION = re.compile(r"Answer with the (?:(opposite|plural) of )?the word '(\w+)'")


class ScriptedKeywordAgent(StaticBackend):
    def __init__(self, tokenizer, p_correct: float = 0.5, seed: int = 0, malformed: bool = False) -> None:
        self.tokenizer = tokenizer
        self.p_correct = p_correct
        self.rng = np.random.default_rng(seed)
        self.malformed = malformed

    def text_for(self, content: str) -> str:
        if self.malformed:
            return "{{{ <rank> not valid"
        if PHASE_FORMATS["select"].instruction in content:
            return "<query>answer with a word</query>"
        if PHASE_FORMATS["rerank"].instruction in content:
            return "<rank>2,1</rank>"
        question = _QUESTION.search(content)
        if question is None:
            return "nothing"
        task = _BY_QUESTION[(question.group(1) or "echo", question.group(2))]
        if PHASE_FORMATS["distill"].instruction in content:
            kind = question.group(1) or "answer"
            skill = {"description": f"Asked for the {kind} of a word.", "strategy": f"Answer with the right {kind}."}
            return json.dumps(skill)
        if self.rng.random() < self.p_correct:
            return task["answer"]
        wrong = [c for c in task["choices"] if c != task["answer"]]
        return str(self.rng.choice(wrong)) if wrong else task["answer"]

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingConfig) -> list[Generation]:
        out = []
        for prompt in prompts:
            text = self.text_for(prompt[-1]["content"])
            prompt_ids = list(self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                                 return_dict=False))  # fmt: skip
            response = self.tokenizer.encode(text, add_special_tokens=False)[: sampling.max_new_tokens] or [0]
            out.append(Generation(text, prompt_ids, response, [0.0] * len(response)))
        return out
