"""schemas.threads: the thread plan (--threads, ICDCODER_THREADS, the cores idle at start), the environment it
sets before torch/onnxruntime load, the onnxruntime session options, and the CLI applying it first."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from schemas import threads
from schemas.cli import Command, main

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS", "OMP_WAIT_POLICY", threads.ENV)


@pytest.fixture
def clean_env(monkeypatch):
    for name in THREAD_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_applied", None)
    import torch

    before = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(before)


@pytest.mark.parametrize("value, expected", [("3", 3), (2, 2), ("auto", None), ("", None), (None, None), (" 4 ", 4)])
def test_parse_threads(value, expected):
    assert threads.parse_threads(value, "--threads") == expected


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_thread_values_name_the_option(value):
    with pytest.raises(threads.ThreadsError, match=f"--threads must be a positive number of threads or 'auto' \\(got '{value}'\\)"):
        threads.parse_threads(value, "--threads")


def test_plan_order_option_then_environment_then_idle_cores(clean_env):
    cores = threads.usable_cores()
    clean_env.setenv(threads.ENV, "3")
    assert threads.plan_threads("5", measure=lambda: 0.0).threads == 5
    plan = threads.plan_threads(None, measure=lambda: 0.0)
    assert (plan.threads, plan.source) == (3, threads.ENV)
    clean_env.delenv(threads.ENV)
    auto = threads.plan_threads("auto", measure=lambda: 0.0)
    assert (auto.threads, auto.source, auto.busy_elsewhere) == (cores, "auto", 0.0)
    assert threads.plan_threads(None, measure=lambda: cores - 1.4).threads == 1 if cores > 1 else True
    assert threads.plan_threads(None, measure=lambda: 50.0).threads == 1  # never below one
    assert "busy elsewhere at start" in auto.describe() and "--threads N" in auto.describe()


def test_apply_sets_the_environment_before_the_runtimes_load(clean_env):
    import torch

    clean_env.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a user's choice is kept
    threads.apply_threads(threads.ThreadPlan(1, 2, 1.0, "auto"))
    assert [os.environ[v] for v in THREAD_VARS[:4]] == ["1"] * 4
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert threads.ENV not in os.environ  # auto is decided afresh by each child process
    assert torch.get_num_threads() == 1 and threads.current_threads() == 1
    clean_env.delenv("OMP_WAIT_POLICY")
    threads.apply_threads(threads.ThreadPlan(2, 2, None, "--threads"))
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and os.environ[threads.ENV] == "2"  # explicit: children follow


def test_onnxruntime_options_follow_the_plan(clean_env):
    import onnxruntime as ort

    threads.apply_threads(threads.ThreadPlan(2, 2, None, "--threads"))
    options = threads.configure_onnxruntime(ort.SessionOptions())
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert threads.configure_onnxruntime(ort.SessionOptions(), 1).intra_op_num_threads == 1


def test_cli_applies_the_plan_before_importing_the_command(clean_env, tmp_path, capsys):
    """torch and OpenMP read OMP_* once, when loaded: the command's module must see them already set."""
    (tmp_path / "fake_threads_cmd.py").write_text(textwrap.dedent("""
        import os
        SEEN = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        def add_arguments(parser):
            parser.add_argument("--x", default="y")
        def run(args):
            print(SEEN, args.threads)
            return 0
    """))
    clean_env.syspath_prepend(str(tmp_path))
    command = Command("fake", "fake_threads_cmd", "test", threads=threads.AUTO)
    assert main("prog", "", [command], ["fake", "--threads", "1", "--x", "z"]) == 0
    assert "{'OMP_NUM_THREADS': '1', 'OMP_WAIT_POLICY': 'PASSIVE'} 1" in capsys.readouterr().out
    assert main("prog", "", [command], ["fake", "--threads", "none"]) == 2
    assert "prog fake: error: --threads must be a positive number" in capsys.readouterr().err


def test_every_computing_command_takes_threads():
    from bench.__main__ import COMMANDS as BENCH
    from engine.__main__ import COMMANDS as ENGINE
    from trainer.__main__ import COMMANDS as TRAINER

    with_threads = {c.name for c in TRAINER + ENGINE + BENCH if c.threads}
    assert {"pretrain", "finetune", "evaluate", "explain", "fill-mask", "export", "prepare", "vocab"} <= with_threads
    assert {"run", "code", "replay"} <= with_threads


def _orphan_spinner(nice: int = 0) -> int:
    """The pid of a busy process outside this tree: started by a child that exits at once (double fork)."""
    argv = repr(["nice", "-n", str(nice), sys.executable, "-c", "while True: pass"])
    starter = subprocess.run(
        [sys.executable, "-c", f"import subprocess; print(subprocess.Popen({argv}, start_new_session=True, "
                               "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"],
        capture_output=True, text=True, check=True)
    return int(starter.stdout)


def test_busy_processes_outside_this_tree_are_counted_elsewhere():
    """A busy child is this command's own work; a busy process outside the tree is someone else's."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    orphan = _orphan_spinner()
    try:
        time.sleep(0.3)
        assert threads._running_in_tree(os.getpid()) >= 2  # this reader + the busy child
        assert threads._running_in_tree(orphan) == 1
        assert threads.runnable_elsewhere() >= 1 and threads.busy_elsewhere(samples=3) >= 1
    finally:
        child.kill()
        os.kill(orphan, 9)
        child.wait()


def test_a_niced_background_job_leaves_its_core_to_us():
    """A batch job at nice 19 yields its core: the plan does not count it as busy, the bench's load record does."""
    spinner = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        time.sleep(0.3)
        in_tree, background = threads._running_tasks(os.getpid())
        assert in_tree >= 2 and spinner.pid not in background  # our own child, however niced, is our work
        orphan = _orphan_spinner(nice=19)
        try:
            time.sleep(0.3)
            assert orphan in threads._running_tasks(os.getpid())[1]
        finally:
            os.kill(orphan, 9)
    finally:
        spinner.kill()
