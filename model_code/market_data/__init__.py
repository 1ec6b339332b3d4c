"""Daily OHLCV market data: the canonical bar schema, the trading calendar, the universe and
the sources bars come from."""
