"""Benchmarks that print tables and write JSON: a model per backend x precision x batch
(``model_bench``) and the whole pipeline per stage and stream count (``pipeline_bench``)."""
