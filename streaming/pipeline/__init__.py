"""The live market-data pipeline: closed candle -> store -> close event -> MACD-V -> alerts."""

from streaming.pipeline.close_script import CloseOutcome
from streaming.pipeline.config import PipelineConfig, SymbolPool, pools_from_universe
from streaming.pipeline.core import CandlePipeline
from streaming.pipeline.listener import QueueListener
from streaming.pipeline.warmup import WarmupReport

__all__ = ["CandlePipeline", "CloseOutcome", "PipelineConfig", "QueueListener", "SymbolPool", "WarmupReport",
           "pools_from_universe"]
