"""Search-QA for skill-gym: Search-R1's search-and-answer protocol over a retriever, as ``SearchQA-v0``.

Modules, one idea each:

* :mod:`.kb` — the embedded knowledge base: a fictional world written out as a corpus and question sets;
  :mod:`.world`, :mod:`.passages` and :mod:`.questions` make the world, its passages and its questions;
* :mod:`.data` — loading question rows (Search-R1's parquet schema) and finding the corpus;
* :mod:`.scoring` — Search-R1's exact-match scoring (``qa_em.py``) and the env's own reward;
* :mod:`.corpus` — wiki-18 passages: the corpus file, its checks and fingerprint, a passage's parts;
* :mod:`.protocol` — what every retriever shares (hits, the protocol, errors, query checks);
* :mod:`.bm25`, :mod:`.dense` — BM25 and dense retrieval in-process, saved in an :mod:`.index` folder;
* :mod:`.retriever` — a retriever opened by spec (``"bm25"``, ``"dense:<model>"``, a URL), cached and shared;
* :mod:`.client`, :mod:`.server` — retrieval over HTTP, and served;
* :mod:`.turns` — how a response becomes a search or an answer: Search-R1's, verl-agent's and a lenient rule;
* :mod:`.env` — :class:`~skill_gym.envs.searchqa.env.SearchQAEnv`, the Gymnasium environment;
* :mod:`.oracle` — scripted agents: the oracle (follows a question's evidence) and a random one.

Nothing heavy is imported here.
"""
