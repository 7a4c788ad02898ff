"""The transport (trackli.atlassian.transport): bounded, typed, honest about time — HTTP dates never raise,
Retry-After is read and capped, a job's bound stops it, rate-limit headers are read without trust."""

import time

import httpx
import pytest
import respx

from trackli.atlassian.errors import RemoteError
from trackli.atlassian.transport import RetryPolicy, Transport, http_date, near_limit, retry_after_s


@pytest.mark.parametrize("value", ["Fri, 31 Dec 9999 23:59:59 -0100", "Fri, 31 Dec 9999 23:00:00 -1000",
                                   "Fri, 31 Dec 99999 23:59:59 GMT", "garbage", "", None, "x" * 100])
def test_http_dates_past_the_representable_range_are_no_date(value):
    assert http_date(value) is None
    assert retry_after_s(httpx.Response(503, headers={} if value is None else {"Retry-After": value})) is None


def test_an_http_date_reads_as_aware_utc():
    when = http_date("Sat, 05 Dec 2026 18:00:00 +0100")
    assert when is not None and when.utcoffset().total_seconds() == 0 and when.hour == 17


def test_a_bound_job_stops_before_a_wait_that_would_pass_its_deadline():
    beats = []
    with respx.mock() as mock:
        mock.get("https://x.example/a").respond(429, headers={"Retry-After": "30"})
        transport = Transport(retry=RetryPolicy(tries=3, sleep=lambda s: None, jitter=lambda: 1.0))
        transport.bound(10, lambda: beats.append(time.monotonic()))
        with pytest.raises(RemoteError, match="time limit"):
            transport.send("GET", "https://x.example/a")
    assert len(beats) == 1  # told before the one try; the 30 s wait was never begun


def test_rate_limit_headers_are_read_without_trusting_them():
    assert near_limit({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "5"})
    assert not near_limit({"X-RateLimit-Limit": "nan", "X-RateLimit-Remaining": "5"})
    assert near_limit({}, 429) and not near_limit({"X-RateLimit-NearLimit": "maybe"})
