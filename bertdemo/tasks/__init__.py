"""Task code, split as transformers' pipelines are: preprocess -> forward -> postprocess.

``forward`` holds the only tensor code; ``fill_mask``, ``next_sentence``, ``sentiment``,
``pll`` and ``attribution`` turn text into :class:`bertdemo.batching.Encoded` items and model
outputs back into plain Python results.
"""
