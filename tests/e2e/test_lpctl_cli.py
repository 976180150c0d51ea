"""Issue 18 (h18cli): lpctl's rough edges. `lpctl attach` replays and follows
a run's output and exits with its code; a command given without `--` gets a
hint; `--env` stops at `--`; typos get a suggestion; `runs -a` shows how
runs ended; `crashes` names the test once (-v: the traceback); a retry
starts under a banner on a line of its own; under a terminal the command
runs on a pseudo-terminal (pytest's colours). Waits are events (process
exits, lines read, FIFOs), never sleeps."""

import json
import os
import shlex
import shutil
import signal
import subprocess

import pytest

from lpd_harness import (LPCTL_BIN, LPD_BIN, PYTHON, finish, killed_if_left_running, read_line_with_timeout,
                         start_attach, start_pytest, write_tests)
from lpd_harness import standalone_env as run_env, standalone_lpctl as lpctl


# -- lpctl attach ---------------------------------------------------------------

def test_attach_follows_a_detached_run_and_exits_with_its_code(lpd, work_dir):
    fifo = os.path.join(work_dir, "go")
    os.mkfifo(fifo)
    started = lpctl(lpd, "run", "--detach", "--", "sh", "-c", 'echo started; read word < "$1"; echo "after $word"; exit 5',
                    "sh", fifo, cwd=work_dir)
    assert started.returncode == 0, started
    run_id = started.stdout.strip()
    with killed_if_left_running(start_attach(lpd, run_id, run_env(lpd))) as attach:
        # The output so far arrives while the run still waits on the FIFO.
        assert read_line_with_timeout(attach.stdout, 60) == "started\n"
        with open(fifo, "w") as f:
            f.write("go\n")
        rest, err = attach.communicate(timeout=120)
    assert attach.returncode == 5, (rest, err)
    assert rest == "after go\n", rest
    assert f"run {run_id} exited with code 5" in err, err


def test_attach_replays_a_finished_run(lpd, work_dir):
    done = lpctl(lpd, "run", "--", "sh", "-c", "echo one; echo two; exit 3", cwd=work_dir)
    assert done.returncode == 3, done
    run_id = lpctl(lpd, "--json", "runs", "-a").stdout
    run_id = json.loads(run_id)[-1]["run_id"]
    for _ in range(2):  # again: the whole output each time
        again = lpctl(lpd, "attach", run_id)
        assert again.returncode == 3, again
        assert again.stdout == "one\ntwo\n", again.stdout


def test_ctrl_c_on_attach_detaches_says_so_and_the_run_goes_on(lpd, work_dir):
    """Attack on issue 18 (F5): Ctrl-C on attach ended lpctl without a word."""
    fifo = os.path.join(work_dir, "go")
    os.mkfifo(fifo)
    started = lpctl(lpd, "run", "--detach", "--", "sh", "-c", 'echo started; read word < "$1"; echo "after $word"',
                    "sh", fifo, cwd=work_dir)
    run_id = started.stdout.strip()
    with killed_if_left_running(start_attach(lpd, run_id, run_env(lpd))) as attach:
        assert read_line_with_timeout(attach.stdout, 60) == "started\n"
        attach.send_signal(signal.SIGINT)
        _, err = attach.communicate(timeout=60)
    assert attach.returncode == -signal.SIGINT, err
    assert f"lpctl: detached from run {run_id}; it goes on (lpctl stop {run_id} stops it" in err, err
    # The run was left alone: it finishes once the FIFO opens, and a new attach sees all of it.
    with open(fifo, "w") as f:
        f.write("go\n")
    again = lpctl(lpd, "attach", run_id)
    assert again.returncode == 0 and again.stdout == "started\nafter go\n", again


def test_a_run_whose_output_lost_its_reader_or_terminal_is_stopped(lpd, work_dir):
    """Attack on issue 18 (3): `lpctl run -- yes | head -1` left `yes`
    running (and filling the disk) with nobody watching; so did a SIGHUP."""
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--grace", "2", "--", "yes"], cwd=work_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=run_env(lpd))
    with killed_if_left_running(proc):
        assert proc.stdout.readline() == b"y\n"
        proc.stdout.close()  # as `head -1` does
        _, err = proc.communicate(timeout=120)
    assert b"(its output has no reader any more)" in err, err
    hung = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--grace", "2", "--", "sh", "-c",
                             "echo started; exec sleep 300"], cwd=work_dir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=run_env(lpd))
    with killed_if_left_running(hung):
        assert read_line_with_timeout(hung.stdout, 60) == "started\n"
        hung.send_signal(signal.SIGHUP)
        _, err = hung.communicate(timeout=120)
    assert "(the terminal hung up)" in err, err
    runs = json.loads(lpctl(lpd, "--json", "runs", "-a").stdout)
    assert [r["status"] for r in runs] == ["ended", "ended"], runs  # both stopped, nothing left running
    assert all(r["result"] in ("stopped", "killed") for r in runs), runs


def test_attach_to_an_unknown_run_fails(lpd):
    r = lpctl(lpd, "attach", "no-such-run")
    assert r.returncode == 1 and "no-such-run" in r.stderr, r


# -- the command line ---------------------------------------------------------

def test_attach_to_a_run_lpctl_run_did_not_start_says_so(lpd, work_dir):
    """Attack on issue 18 (F9): a plain pytest run (the plugin joined lpd)
    is listed by `lpctl runs -a`; attach said only "no supervised run"."""
    write_tests(work_dir, "test_plain.py", "def test_ok():\n    pass\n")
    code, out = finish(start_pytest(lpd, work_dir, "test_plain.py", run_id="plain-run-1"))
    assert code == 0, out
    assert "plain-run-1" in [r["run_id"] for r in json.loads(lpctl(lpd, "--json", "runs", "-a").stdout)]
    r = lpctl(lpd, "attach", "plain-run-1")
    assert r.returncode == 1, r
    assert "was not started by lpctl run" in r.stderr and "lpctl events --run-id" in r.stderr, r.stderr
    assert "no supervised run" in lpctl(lpd, "attach", "never-was").stderr


def test_a_command_without_dashdash_gets_the_hint(lpd, work_dir):
    r = lpctl(lpd, "run", "pytest", "-q", cwd=work_dir)
    assert r.returncode == 64, r
    assert "-q" in r.stderr and "put -- before the command" in r.stderr, r.stderr
    # lpctl's own unknown option after a -- is not the command's: no hint.
    r = lpctl(lpd, "run", "--no-such-option", "--", "true", cwd=work_dir)
    assert r.returncode == 64 and "put --" not in r.stderr, r.stderr


def test_env_and_repeatable_options_stop_at_dashdash(lpd, work_dir):
    r = lpctl(lpd, "run", "--env", "K=V", "--env", "L=W", "--", "sh", "-c", 'echo "$K $L $1"', "sh", "-x", cwd=work_dir)
    assert r.returncode == 0, r
    assert r.stdout == "V W -x\n", r.stdout
    r = lpctl(lpd, "run", "--env=K=V", "--", "sh", "-c", 'echo "$K $1"', "sh", "--env", cwd=work_dir)
    assert r.returncode == 0 and r.stdout == "V --env\n", r


def test_a_mistyped_command_gets_a_suggestion(lpd):
    r = lpctl(lpd, "rusn")
    assert r.returncode == 64 and "did you mean 'runs'?" in r.stderr, r
    r = lpctl(lpd, "--json", "crashs")
    assert r.returncode == 64 and "did you mean 'crashes'?" in r.stderr, r
    r = lpctl(lpd, "frobnicate")
    assert r.returncode == 64 and "did you mean" not in r.stderr and "unknown command 'frobnicate'" in r.stderr, r
    # One line, not CLI11's "argument not expected" before it (attack F9).
    r = lpctl(lpd, "atach", "some-run")
    assert r.returncode == 64 and r.stderr == "lpctl: unknown command 'atach'; did you mean 'attach'?\n", r
    # lpd's own commands too.
    r = subprocess.run([LPD_BIN, "stpo"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 64 and r.stderr == "lpd: unknown command 'stpo'; did you mean 'stop'?\n", r


def test_help_lists_every_exit_code(lpd):
    text = lpctl(lpd, "--help").stdout
    for code in ("0 ok", "1 the operation failed", "2 no lpd answered", "64 bad command line", "124 a wait timed out"):
        assert code in text, text


def test_runs_all_shows_exit_code_and_result(lpd, work_dir):
    assert lpctl(lpd, "run", "--", "true", cwd=work_dir).returncode == 0
    assert lpctl(lpd, "run", "--", "sh", "-c", "exit 7", cwd=work_dir).returncode == 7
    runs = json.loads(lpctl(lpd, "--json", "runs", "-a").stdout)
    assert [(r["returncode"], r["result"]) for r in runs] == [(0, "passed"), (7, "failed")], runs
    lines = lpctl(lpd, "runs", "-a").stdout.splitlines()
    header = lines[0].split()
    assert header[:7] == ["RUN", "STATUS", "PID", "WORKERS", "EXIT", "RESULT", "CWD"], lines
    rows = [dict(zip(header, line.split(None, len(header) - 1))) for line in lines[1:]]
    assert [(r["EXIT"], r["RESULT"]) for r in rows] == [("0", "passed"), ("7", "failed")], lines


def test_tables_stay_aligned_with_long_run_names(lpd, work_dir):
    """Attack on issue 18 (F6): a named run's id (up to 64 characters of
    name) pushed its row out of line with the header."""
    name = "a-rather-long-name-for-this-run-" + "x" * 9  # 41, the longest a name may be
    assert lpctl(lpd, "run", "--", "true", cwd=work_dir).returncode == 0
    assert lpctl(lpd, "run", "--name", name, "--", "sh", "-c", "kill -SEGV $$", cwd=work_dir).returncode == -11
    long_id = json.loads(lpctl(lpd, "--json", "runs", "-a").stdout)[-1]["run_id"]
    assert len(long_id) > 28, long_id  # wider than either column was
    for argv, column in ((["runs", "-a"], "STATUS"), (["crashes"], "SIGNAL")):
        lines = lpctl(lpd, *argv).stdout.splitlines()
        at = lines[0].index(column)
        assert lines[0][at - 2:at] == "  ", lines
        for line in lines[1:]:
            assert line[at - 2:at] == "  " and line[at] != " ", (argv, lines)
        assert any(line.startswith(long_id + "  ") for line in lines[1:]) or argv == ["crashes"], lines
        assert long_id in "\n".join(lines)


def test_a_name_too_long_or_badly_formed_for_a_run_id_is_refused(lpd, work_dir):
    """Attack on issue 18 (1): a 47-character name was cut from the front
    into an id starting with '-', and an lpd restart then lost the run."""
    r = lpctl(lpd, "run", "--name", "project-" + "x" * 40, "--", "true", cwd=work_dir)
    assert r.returncode == 1 and "is 48 characters; at most 41" in r.stderr, r
    for bad in ("-x", ".hidden", "a/b"):
        r = lpctl(lpd, "run", "--name=" + bad, "--", "true", cwd=work_dir)
        assert r.returncode == 1 and "must start with a letter or digit" in r.stderr, (bad, r)
    assert json.loads(lpctl(lpd, "--json", "runs", "-a").stdout) == []  # nothing was started
    ok = lpctl(lpd, "run", "--name", "p" * 41, "--", "true", cwd=work_dir)
    assert ok.returncode == 0, ok
    (run,) = json.loads(lpctl(lpd, "--json", "runs", "-a").stdout)
    assert run["run_id"].startswith("p" * 41 + "-") and len(run["run_id"]) == 64, run


def test_listings_show_control_characters_as_question_marks(lpd, work_dir):
    """Attack on issue 18 (2): a cwd (or nodeid) with escapes and a newline
    cleared the screen of whoever ran `lpctl runs -a` and forged a row."""
    evil = os.path.join(work_dir, "evil\x1b[2J\x1b[31mX\nFAKE-RUN  ended  1  0  0  passed")
    os.makedirs(evil)
    assert lpctl(lpd, "run", "--", "true", cwd=evil).returncode == 0
    shown = lpctl(lpd, "runs", "-a").stdout
    assert "\x1b" not in shown, shown
    lines = shown.splitlines()
    assert len(lines) == 2 and lines[1].endswith("evil?[2J?[31mX?FAKE-RUN  ended  1  0  0  passed"), lines
    events = lpctl(lpd, "events").stdout
    assert "\x1b" not in events


def test_a_run_that_died_of_a_signal_says_lpctl_passes_it_on(lpd, work_dir):
    """Attack on issue 18 (F3): lpctl ends by the run's signal, and a shell
    then reports "Segmentation fault" for lpctl's command line: lpctl says
    first that the signal is the run's."""
    r = lpctl(lpd, "run", "--", "sh", "-c", "kill -SEGV $$", cwd=work_dir)
    assert r.returncode == -11, r
    assert "killed by SIGSEGV" in r.stderr, r.stderr
    assert r.stderr.rstrip().endswith("lpctl: ending by SIGSEGV, as the run did (lpctl itself did not crash)"), r.stderr


# -- retries, crashes ---------------------------------------------------------

CRASH_MID_LINE = """
import os

def test_a_passes():
    pass

def test_b_dies():
    if not os.path.exists("retrying"):
        open("retrying", "w").close()
        os.write(1, b"partial line")
        os.kill(os.getpid(), 9)

def test_c_passes():
    pass
"""


def test_a_retry_starts_under_a_banner_on_its_own_line(lpd, work_dir):
    write_tests(work_dir, "test_mid.py", CRASH_MID_LINE)
    r = lpctl(lpd, "--json", "run", "--retry-crashed", "2", "--", PYTHON, "-m", "pytest", "-p", "no:cacheprovider",
              "-p", "no:faulthandler", "-q", "-s", "test_mid.py", cwd=work_dir)
    lines = r.stdout.splitlines()
    done = json.loads([line for line in lines if line.startswith("{")][-1])
    assert done["attempts"] == 2, r
    assert "lpd: attempt 2: retry 1/2: re-running without 1 crashed test" in lines, r.stdout
    banner_at = lines.index("lpd: attempt 2: retry 1/2: re-running without 1 crashed test")
    assert lines[banner_at - 1].endswith("partial line"), lines  # the dead attempt's line, ended before it
    # The verdict tells the last attempt's code from the run's (attack F7).
    assert ("its last full run exited with code 0, 1 crash(es); the run fails with exit code 1: a test crashed"
            in r.stderr), r.stderr
    # The crash names its test once, the traceback only with -v.
    text = lpctl(lpd, "crashes", "--run-id", done["run_id"]).stdout
    assert text.count("test_mid.py::test_b_dies") == 1, text
    assert "killed by SIGKILL" in text, text


ALWAYS_DIES = """
import os

def test_a_passes():
    pass

def test_b_dies():
    os.kill(os.getpid(), 9)
"""


def test_banners_number_attempts_as_the_job_does_when_reruns_and_retries_mix(lpd, work_dir):
    """Attack on issue 18 (F2): a rerun alone, then a retry, used to announce
    the third start as "attempt 2/2". Each banner now names the job's own
    attempt number and which retry or rerun it is."""
    write_tests(work_dir, "test_dies.py", ALWAYS_DIES)
    r = lpctl(lpd, "--json", "run", "--rerun-crashed", "1", "--retry-crashed", "1", "--", PYTHON, "-m", "pytest",
              "-p", "no:cacheprovider", "-p", "no:faulthandler", "-q", "test_dies.py", cwd=work_dir)
    lines = r.stdout.splitlines()
    done = json.loads([line for line in lines if line.startswith("{")][-1])
    assert done["attempts"] == 3, r
    banners = [line for line in lines if line.startswith("lpd: attempt")]
    assert banners == ["lpd: attempt 2: rerun 1/1: re-running crashed test test_dies.py::test_b_dies alone",
                       "lpd: attempt 3: retry 1/1: re-running without 1 crashed test"], r.stdout


def test_crashes_verbose_prints_the_traceback(lpd, work_dir):
    write_tests(work_dir, "test_tb.py", "import ctypes\ndef test_segv_here():\n    ctypes.string_at(0)\n")
    r = lpctl(lpd, "--json", "run", "--", PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_tb.py",
              cwd=work_dir)
    run_id = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])["run_id"]
    plain = lpctl(lpd, "crashes", "--run-id", run_id).stdout
    assert plain.count("test_tb.py::test_segv_here") == 1 and "Fatal Python error" not in plain, plain
    verbose = lpctl(lpd, "crashes", "-v", "--run-id", run_id).stdout
    assert "Fatal Python error" in verbose and "line 3" in verbose, verbose
    # lpctl run's own crash line names the test once too.
    assert r.stderr.count("test_tb.py::test_segv_here") == 1, r.stderr
    listed = {x["run_id"]: x for x in json.loads(lpctl(lpd, "--json", "runs", "-a").stdout)}[run_id]
    assert listed["result"] == "crashed" and listed["signal"] == 11, listed


# -- the terminal -------------------------------------------------------------

COLOURED = """
def test_passes():
    pass

def test_fails():
    assert 1 == 2
"""


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) from util-linux")
def test_under_a_terminal_the_command_runs_on_one(lpd, work_dir):
    write_tests(work_dir, "test_colour.py", COLOURED)
    command = [LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "-m", "pytest", "-p", "no:cacheprovider",
               "test_colour.py"]
    env = run_env(lpd)
    env.pop("NO_COLOR", None)
    env.pop("PY_COLORS", None)
    env["TERM"] = "xterm"
    # script(1) gives lpctl a terminal for stdout; the log is the terminal's output.
    r = subprocess.run(["script", "-qec", shlex.join(command), "/dev/null"], cwd=work_dir, capture_output=True,
                       timeout=240, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r
    assert b"\x1b[" in r.stdout, r.stdout  # pytest's colours: it saw a terminal
    assert b"1 failed" in r.stdout, r.stdout
    # Through a pipe: plain output, as pytest writes for a pipe.
    piped = subprocess.run(command, cwd=work_dir, capture_output=True, timeout=240, env=env)
    assert piped.returncode == 1, piped
    assert b"1 failed" in piped.stdout and b"\x1b[" not in piped.stdout, piped.stdout


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) from util-linux")
def test_the_terminal_has_a_size_and_carries_stdout_and_stderr(lpd, work_dir):
    probe = ("import os, sys; size = os.get_terminal_size(1); "
             "print('tty', os.isatty(1), os.isatty(2), size.columns > 0, size.lines > 0, os.ttyname(1).startswith('/dev/pts/'))")
    command = [LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "-c", probe]
    r = subprocess.run(["script", "-qec", shlex.join(command), "/dev/null"], cwd=work_dir, capture_output=True,
                       timeout=240, env=run_env(lpd), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    assert b"tty True True True True True" in r.stdout, r.stdout
    piped = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "-c",
                            "import os; print('tty', os.isatty(1), os.isatty(2))"],
                           cwd=work_dir, capture_output=True, timeout=240, env=run_env(lpd))
    assert piped.returncode == 0 and piped.stdout == b"tty False False\n", piped


def test_a_run_whose_environment_passes_the_line_limit_is_refused_naming_it(lpd, work_dir):
    """h13fixC (second attack, finding 4): nine 120 KB environment variables
    made run.start over 1 MiB, and lpctl only relayed lpd's "line exceeds
    1048576 bytes; closing connection". lpctl now refuses before sending,
    naming the request, its size and the largest variables."""
    env = lpd.env(**{f"BIG_{i}": chr(ord("a") + i) * 120_000 for i in range(9)})
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", "true"], cwd=work_dir, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert 'the "run.start" request is' in result.stderr and "over lpd's 1048576-byte line limit" in result.stderr
    assert "env BIG_" in result.stderr and "pass fewer or smaller ones [too_large]" in result.stderr
    assert lpd.lpctl_json("runs", "-a") == []  # nothing was started
