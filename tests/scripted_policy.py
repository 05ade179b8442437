"""A scripted agent for Keyword-v0 skill envs: a real Backend whose texts follow a fixed rule.

It answers each phase in the expected format (query, rank, a word, a JSON skill) and picks the
right word with probability ``p_correct``, so learner tests see successes and failures
deterministically. Token ids come from the given tokenizer, so a model can be trained on them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from agents.backends.base import ChatPrompt, Generation, SamplingConfig
from skill_gym.envs.keyword import TASKS

_ANSWERS = {(t["task_type"], t["word"]): t["answer"] for t in TASKS}
_KINDS = {"opposite": "opposite", "plural": "plural", "word": "echo"}


class ScriptedKeywordAgent:
    def __init__(self, tokenizer, p_correct: float = 0.5, seed: int = 0, malformed: bool = False) -> None:
        self.tokenizer = tokenizer
        self.p_correct = p_correct
        self.rng = np.random.default_rng(seed)
        self.malformed = malformed

    def text_for(self, content: str) -> str:
        if self.malformed:
            return "{{{ <rank> not valid"
        if "inside <query>" in content:
            return "<query>answer with a word</query>"
        if "Candidate skills" in content:
            return "<rank>2,1</rank>"
        if "JSON object only" in content:
            kind = re.search(r"at the task 'Answer with the (\w+)", content)
            return ('{"description": "Asked for the %s of a word.", "strategy": "Answer with the right %s."}'
                    % ((kind.group(1),) * 2 if kind else ("answer", "answer")))  # fmt: skip
        task = re.search(r"Your task: Answer with the (?:(opposite|plural) of )?the word '(\w+)'", content)
        if task is None:
            return "nothing"
        kind = task.group(1) or "echo"
        answer = _ANSWERS[(kind, task.group(2))]
        choices = re.search(r"Admissible actions: (.*)", content).group(1).split(", ")
        if self.rng.random() < self.p_correct:
            return answer
        wrong = [c for c in choices if c != answer]
        return str(self.rng.choice(wrong)) if wrong else answer

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingConfig) -> list[Generation]:
        out = []
        for prompt in prompts:
            text = self.text_for(prompt[-1]["content"])
            prompt_ids = list(self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                                 return_dict=False))  # fmt: skip
            response = self.tokenizer.encode(text, add_special_tokens=False)[: sampling.max_new_tokens] or [0]
            out.append(Generation(text, prompt_ids, response, [0.0] * len(response)))
        return out
