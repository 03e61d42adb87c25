"""The tasks, one module each; importing this package registers the built-in ones with
`charrnn.tasks.registry`, in the order --help lists them."""

import importlib

BUILT_IN = ("language_model", "classify", "tag", "seq2seq")

for _module in BUILT_IN:
    importlib.import_module(f"charrnn.tasks.{_module}")
