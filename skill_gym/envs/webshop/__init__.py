"""WebShop for skill-gym: a faithful text re-implementation of princeton-nlp/WebShop (Yao et al., 2022).

Modules, one idea each (importing this package loads none of them):

* :mod:`.data` — upstream's loader (``load_products``: derived product fields, price table, attribute index),
  the goal split and :func:`~.data.load_data`, the cached bundle the environment reads;
* :mod:`.goals` — upstream's human and synthetic goals with price caps (``get_goals``);
* :mod:`.catalog` — the embedded catalog: a deterministic generator writing upstream's three files;
* :mod:`.normalize` — upstream's color and size normalization;
* :mod:`.reward` — upstream's reward (type, attributes, options, price), bug-compatible or strict;
* :mod:`.search` — the search engine over product texts;
* :mod:`.html` and :mod:`.pages` — the rendered pages and the page state machine;
* :mod:`.env` — the Gymnasium environment;
* :mod:`.oracle` — a scripted shopper that reaches the goal product.
"""
