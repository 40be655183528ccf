"""The core the trainer and the worker share: what both must agree on, imported by every package above it.

* ``lmr.model``: the model contract. The registry (publish, ``LATEST``, checksums), the extractor
  (load a model, predict mentions with exact offsets), the inference runtimes and ``auto``'s choice among
  them, the span prior and the text cache.
* Data: ``readers`` (IDRISI, GLiNER JSON, CoNLL), ``datasets`` (IDRISI found or fetched), ``posts`` (which
  fields hold a post's text and id), ``words`` (the one word splitter), ``names`` (the one place-name key),
  ``place_types`` (the seven coarse place types), ``mentions``.
* Evaluation: ``scoring`` (span P/R/F1, WER), ``evaluation`` (one path for a model and a worker's output),
  ``report`` (offline HTML reports).
* Running: ``errors`` (every error says the problem and the fix), ``config`` (flag > env > file), ``logs``
  (secrets masked), ``environment`` (the environment defaults), ``backoff`` (the one retry policy).
"""

__version__ = "0.1.0"
