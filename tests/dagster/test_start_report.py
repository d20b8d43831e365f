"""What start_streaming logs and records about a start (pure): warm-up tenths, refusals, warm-up totals."""

from livermore_pipelines.start_report import ProgressTenths, refused, warm_up


def test_progress_is_logged_once_per_tenth():
    lines: list[str] = []
    tenths = ProgressTenths("coinbase", lines.append)
    for done in range(0, 251):
        tenths({"streams_done": done, "streams_total": 250, "candles": done * 300, "eta_s": (250 - done) / 10})
    assert len(lines) == 11
    assert lines[0] == "coinbase warm-up 0%: 0/250 streams, 0 candles, about 25 s left"
    assert lines[5] == "coinbase warm-up 50%: 125/250 streams, 37,500 candles, about 12 s left"
    assert lines[-1] == "coinbase warm-up 100%: 250/250 streams, 75,000 candles"
    tenths({"streams_done": 100, "streams_total": 250})  # never backwards
    tenths({"streams_done": 0, "streams_total": 0})  # nothing to warm up: nothing said
    assert len(lines) == 11


def test_one_worker_answer():
    result = {"symbols": 3, "refused": {"BAD-USD": "unknown product"},
              "warm_up": {"streams_total": 15, "streams_done": 15, "candles": 4500, "seconds": 2.34}}
    assert refused(result) == {"BAD-USD": "unknown product"}
    assert warm_up(result) == {"streams": 15, "candles": 4500, "seconds": 2.3}


def test_several_workers_and_a_request_count_when_the_answer_has_one():
    result = {"workers": {
        "w1": {"refused": {"B-USD": "delisted"}, "warm_up": {"streams_total": 10, "candles": 100, "seconds": 4.0,
                                                              "warmup_requests": 12}},
        "w2": {"refused": {"A-USD": "halted"}, "warm_up": {"streams_total": 5, "candles": 50, "seconds": 6.0},
               "warmup_requests": 3},
    }}
    assert refused(result) == {"A-USD": "halted", "B-USD": "delisted"}
    assert warm_up(result) == {"streams": 15, "candles": 150, "seconds": 6.0, "requests": 15}


def test_an_answer_without_warm_up_says_zero():
    assert warm_up({"already_running": True}) == {"streams": 0, "candles": 0, "seconds": 0.0}
    assert refused({"refused": "not a mapping"}) == {}


def test_the_last_tenth_says_the_rest_requests_when_the_worker_counts_them():
    lines: list[str] = []
    tenths = ProgressTenths("binance", lines.append)
    tenths({"streams_done": 10, "streams_total": 10, "candles": 3000, "requests": 20})
    assert lines == ["binance warm-up 100%: 10/10 streams, 3,000 candles, 20 REST requests"]
