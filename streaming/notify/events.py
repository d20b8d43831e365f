"""The alert contract the delivery service consumes: its one import, so moving it is one line."""

from streaming.alerts.publish import AlertEvent, decode_alert, encode_alert

__all__ = ["AlertEvent", "decode_alert", "encode_alert"]
