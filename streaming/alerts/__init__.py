"""MACD-V alerts: pure rules (rules.py); publishing lives beside them."""
