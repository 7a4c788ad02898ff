"""Twenty threads approving, editing and moving cards at once: no error, no lost update, no deadlock."""

from bench import load


def test_twenty_people_at_once(ctx):
    report = load.run(ctx, seconds=6, threads=20)
    problems = load.check(ctx, report)
    print(f"\nload: {report.operations} operations in {report.seconds:.1f} s = {report.per_second:.0f} ops/s, "
          f"p95 {report.p95_ms:.1f} ms, {dict(report.by_kind)}")
    assert problems == []
    assert report.operations > 100 and report.by_kind["move"] and report.by_kind["approve"] and report.by_kind["edit"]
