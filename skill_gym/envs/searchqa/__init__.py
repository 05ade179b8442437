"""Search-QA: the Search-R1 protocol (search, then answer) over a retriever, in-process or over HTTP."""
