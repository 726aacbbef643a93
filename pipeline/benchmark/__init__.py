"""Benchmarks of the training path: ``python -m pipeline.benchmark train|data|corpus ...``.

``train`` (``pipeline.benchmark.train``) times real training steps: clips/s, data wait vs compute, peak memory, MFU.
``data`` (``pipeline.benchmark.data``) times the clip decoding and loading path on its own.
``corpus`` (``pipeline.benchmark.corpus``) writes the UCF101-shaped videos the benchmarks read.
"""
