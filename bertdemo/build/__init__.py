"""Reproducible build of the bundled default models (``python -m bertdemo.build``).

Steps: :mod:`.fetch` (pinned, hash-checked inputs from package registries), :mod:`.corpus`
(pre-training text with document structure, whole documents held out), :mod:`.pretrain`
(continued MLM + NSP pre-training), :mod:`bertdemo.finetune` (sentiment head) and
:mod:`.evaluate_model` (held-out measurements). None of this is needed at run time.
"""
