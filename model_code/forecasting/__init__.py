"""Statistical forecasters of daily log returns behind one interface (:mod:`.base`)."""
