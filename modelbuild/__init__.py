"""Reproducible build of the bundled default models (``python -m modelbuild``), outside the app's package.

Stages (:mod:`.main`): fetch pinned, hash-checked inputs (:mod:`.fetch`); read the pre-training text
(:mod:`.corpus`); probe the candidate starts and pre-train (:mod:`.pretrain`); measure on held-out
documents (:mod:`.evaluate_model`) and on what visitors type (:mod:`.user_eval`, data in ``eval/``);
fine-tune the sentiment classifier (:mod:`.sentiment`, with :mod:`bertdemo.finetune`); write the model
folders and cards (:mod:`.cards`). None of this is needed at run time, and none of it ships in the wheel.
"""
