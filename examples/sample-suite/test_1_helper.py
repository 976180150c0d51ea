"""Two tests share one helper server, started once by lpd."""

from conftest import visit

seen = {}


def test_helper_first_visit(counter_server):
    seen["pid"], seen["served"] = visit(counter_server)
    print(f"counter server pid {seen['pid']}, visit {seen['served']}")


def test_helper_reused(counter_server):
    pid, served = visit(counter_server)
    print(f"counter server pid {pid}, visit {served}")
    assert pid == seen["pid"], "the second test got another server: it was started twice"
    assert served == seen["served"] + 1
