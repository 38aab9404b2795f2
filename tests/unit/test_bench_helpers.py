"""The benchmark's pure helpers: wrk's report parser, run statistics, targets, the table."""

from __future__ import annotations

import pytest
from bench.report import Figure, markdown_table, text_table
from bench.stats import Stat, Target, ratio
from bench.wrk import WrkError, parse

WRK_REPORT = """\
Running 8s test @ http://127.0.0.1:40001
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.12ms    1.02ms  20.00ms   90.00%
    Req/Sec     6.30k   400.00     7.00k    80.00%
  Latency Distribution
     50%    4.90ms
     75%  812.00us
     90%    1.20s
     99%    2.50m
  100336 requests in 8.00s, 150.42MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  12541.75
Transfer/sec:     18.80MB
"""


def test_wrk_report_gives_throughput_percentiles_and_failures() -> None:
    result = parse(WRK_REPORT)
    assert result.requests == 100336
    assert result.duration_s == pytest.approx(8.0)
    assert result.requests_per_s == pytest.approx(12541.75)
    assert result.percentiles == pytest.approx({50: 0.0049, 75: 0.000812, 90: 1.2, 99: 150.0})
    assert result.p99_s == pytest.approx(150.0)
    assert result.non_2xx_3xx == 7
    assert result.socket_errors == {"connect": 0, "read": 2, "write": 0, "timeout": 3}
    assert result.errors == 12


def test_clean_wrk_report_has_no_errors() -> None:
    clean = "\n".join(
        line for line in WRK_REPORT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    result = parse(clean)
    assert result.errors == 0
    assert result.socket_errors == {}


def test_text_that_is_not_a_wrk_report_is_refused() -> None:
    with pytest.raises(WrkError):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_stat_summarises_median_min_max() -> None:
    stat = Stat.of([3.0, 1.0, 2.0])
    assert (stat.median, stat.min, stat.max) == (2.0, 1.0, 3.0)
    with pytest.raises(ValueError, match="at least one"):
        Stat.of([])


def test_ratio_is_oriented_so_one_means_as_fast_as_the_ceiling() -> None:
    assert ratio(80.0, 100.0) == pytest.approx(0.8)
    assert ratio(10.0, 8.0, higher_is_better=False) == pytest.approx(0.8)  # latency in ms


@pytest.mark.parametrize(
    ("target", "observed", "met"),
    [
        (Target(op=">=", value=0.8), 0.8, True),
        (Target(op=">=", value=0.8), 0.79, False),
        (Target(op="<=", value=3.0, kind="absolute"), 2.9, True),
        (Target(op="<=", value=3.0, kind="absolute"), 3.1, False),
    ],
)
def test_targets(target: Target, observed: float, met: bool) -> None:
    assert target.met(observed) is met


def at_least_80_percent_of_100(key: str, title: str, *runs: float) -> Figure:
    """A throughput figure of ``runs`` req/s, whose target is 80 % of a 100 req/s ceiling."""
    return Figure(
        key=key,
        title=title,
        unit="req/s",
        hexmarket=Stat.of(list(runs)),
        ceiling=Stat.of([100.0]),
        target=Target(op=">=", value=0.8),
    )


def test_table_says_which_target_is_not_met_and_why_a_figure_is_missing() -> None:
    figures = [
        at_least_80_percent_of_100("a", "fast one", 90.0, 95.0, 100.0),
        at_least_80_percent_of_100("b", "slow one", 50.0),
        Figure(
            key="c",
            title="memory",
            unit="KB",
            hexmarket=Stat.of([3.5]),
            target=Target(op="<=", value=3.0, kind="absolute"),
        ),
        Figure(key="d", title="absent", unit="", note="not measured: the consumer has not landed"),
    ]
    assert [f.status for f in figures] == ["met", "NOT MET", "NOT MET", "not measured"]
    text = text_table(figures)
    assert "95.0 req/s [90.0–100]" in text
    assert "0.95" in text
    assert "absent: not measured: the consumer has not landed" in text
    md = markdown_table(figures)
    assert md.count("\n") == len(figures) + 1
    assert "| slow one | 50.0 req/s |" in md
