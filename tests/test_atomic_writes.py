"""Reports, exports and caches are written whole or not at all: two processes writing one path never tear it or
fail on a shared temporary name (they did: one `report.html.tmp` for everyone), a failed write leaves nothing, and
a name with backticks cannot break out of the markdown summary's code spans."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from actlab.atomic import atomic_path, write_text


def _writer(path: str, marker: str, rounds: int, errors) -> None:
    try:
        for _ in range(rounds):
            write_text(path, marker * 200_000)
    except Exception as exc:  # pragma: no cover - what the test looks for
        errors.put(repr(exc))


def test_two_processes_writing_one_path_never_tear_it(tmp_path):
    path = tmp_path / "report.html"
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(path), m, 40, errors)) for m in "ab"]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):
        if path.exists():
            text = path.read_text()
            assert text in ("a" * 200_000, "b" * 200_000)  # never half of one and half of the other
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert errors.empty()
    assert not [f for f in tmp_path.iterdir() if f.name != "report.html"]  # no temporary left behind


def test_a_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_backticks_in_names_stay_inside_the_markdown_code_span():
    from actlab.report.markdown import _code

    evil = "x`<img src=x onerror=alert(1)>`"
    span = _code(evil)
    assert span.startswith("``") and span.endswith("``") and evil in span
    # a CommonMark code span closes only on a backtick run of its fence's length
    inner = span[2:-2]
    assert "``" not in inner.strip()
    assert _code("plain") == "`plain`"


def test_written_files_take_the_umask_not_mkstemps_private_mode(tmp_path):
    """Reports and exports were written 0600 (mkstemp's mode survived the rename): others could not read a report
    meant to be shared. A new file gets 0666 less the umask; a rewritten file keeps its mode."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        fresh = write_text(tmp_path / "report.html", "<p>x</p>")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        os.chmod(fresh, 0o640)
        write_text(fresh, "<p>y</p>")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
    finally:
        os.umask(old)
