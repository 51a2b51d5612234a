"""Analyses of trained models: convolution-filter statistics and representational similarity.

See ``bench.analysis.filters`` (Gavrikov & Keuper 2022), ``bench.analysis.rsa`` (in the
spirit of Zhang et al. 2018) and ``bench.analysis.cli`` (the ``bench analyze`` command).
"""
