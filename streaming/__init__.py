"""Livermore's live side: exchange adapters, candle store, MACD-V, alerts and the worker.

Importable and runnable without dagster.
"""

__version__ = "0.1.0"
