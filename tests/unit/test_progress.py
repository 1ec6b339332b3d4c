"""Progress lines: counts, share, rate and ETA, logged on a clock and once at the end."""

from model_code.progress import progress_line, track


def test_progress_line_counts_rate_and_eta():
    assert progress_line("fits", 12, 40, 15.0) == "fits: 12/40 (30 %), 0.80/s, ETA 35 s"
    assert progress_line("fits", 40, 40, 125.0) == "fits: 40/40 (100 %), 0.32/s, done in 2.1 min"
    assert progress_line("rows", 5, None, 2.0) == "rows: 5 done, 2.50/s, 2 s elapsed"
    assert progress_line("fits", 0, 10, 0.0) == "fits: 0/10 (0 %), –/s, ETA unknown"


def test_track_yields_every_item_and_logs_on_its_clock_and_at_the_end():
    ticks = iter([0.0, 1.0, 11.0, 12.0, 20.0, 30.0, 31.0])  # start, one reading per item, the end
    lines: list[str] = []
    out = list(
        track(range(5), "days", log=lines.append, every_seconds=10, bar=False, clock=lambda: next(ticks))
    )
    assert out == [0, 1, 2, 3, 4]
    # item 2 (t=11) is the first 10 s after the start; item 5 (t=30) is the last, reported once at the end
    assert lines == ["days: 2/5 (40 %), 0.18/s, ETA 16 s", "days: 5/5 (100 %), 0.16/s, done in 31 s"]
