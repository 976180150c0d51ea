"""lpd's pytest plugin: live pause and resume through the lpd daemon.

Load it with no installation: PYTHONPATH=<lpd>/shim/python and either
PYTEST_PLUGINS=lpd_pytest or `pytest -p lpd_pytest`. Installed, it loads by
itself. Without its options and without a daemon it does nothing.

    from lpd_pytest import checkpoint
    decision = checkpoint(task="approve the screenshot", timeout=300)
    assert decision.result is True, decision.reason

Helper processes: the `lpd_process` fixture, and pytest-xprocess's
`xprocess` fixture with --xkill/--xshow when pytest-xprocess's own plugin
is not active (process_plugin.py).

PYTEST_DONT_REWRITE (pytest would warn, fatally under `filterwarnings =
error`, when this package was imported before it marked it for rewriting)
"""

import sys


def _load_submodules_unrewritten():
    """PYTEST_PLUGINS=lpd_pytest (what lpd sets) or -p lpd_pytest marks every
    module under "lpd_pytest" for pytest's assert rewriting. The rewritten
    code is cached only where pytest may write (not a package installed
    read-only for the CI user, not under PYTHONDONTWRITEBYTECODE, which many
    CI images set): there every pytest process, each xdist worker, parsed,
    rewrote and compiled the shim's 170 KB of sources again, about 60 ms of
    its start. The shim's own asserts need no rewriting, so the mark is
    taken back before its submodules load, and they come from Python's
    ordinary bytecode (compiled when lpd is built or installed). This file,
    which pytest still compiles from source, is kept small: the plugin's
    code is in plugin.py. Uses pytest's private hook attributes only if
    they are there as expected."""
    for hook in sys.meta_path:
        marked = getattr(hook, "_must_rewrite", None)
        if not isinstance(marked, set) or __name__ not in marked:
            continue
        marked.discard(__name__)
        cache = getattr(hook, "_marked_for_rewrite_cache", None)
        if isinstance(cache, dict):
            for name in [n for n in cache if n == __name__ or n.startswith(__name__ + ".")]:
                del cache[name]


_load_submodules_unrewritten()

from . import plugin as _plugin  # noqa: E402 (after the rewrite mark is taken back)

# pytest registers this package as the plugin: its hooks, fixtures, public
# names (and __all__) are plugin.py's. plugin.py's functions keep their own
# module's state (_link, _reporter, ...), which is not copied here.
globals().update({name: value for name, value in vars(_plugin).items()
                  if not name.startswith("__") or name == "__all__"})
