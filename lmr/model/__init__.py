"""The model contract shared by the trainer and the worker: the registry, the extractor and its runtimes."""
