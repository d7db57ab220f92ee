"""The webhook side, one way: bounded read, verify, parse, detect, tokenize, rewrite, audit,
forward (`proxy.py`), with `pipeline.py` the only module that knows the stage order."""
