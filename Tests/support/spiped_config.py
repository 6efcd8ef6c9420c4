"""Configuration files for `spiped --config` in the tests: rendering pipe sections, writing a
file so that a reader never sees half of it, and SIGHUP reloads that wait for their outcome in
the process's log.

Standard library only, shared by the Scenario and Integration suites (each makes
Tests/support importable in its conftest.py).
"""
import os
import re
import signal
import time

# The one line a successful reload logs, e.g.
# "reload: 1 added (c), 1 removed (b), 1 updated (a), 0 unchanged".
RELOAD_SUMMARY = re.compile(r"\breload: \d+ added\b[^\n]*")
# The last line of a reload that met errors.
RELOAD_FAILED = "reload failed: keeping the running configuration"


def pipe_section(name, **options):
    """The text of one `[name]` section. Option names are written with `-` for `_`
    (`max_connections` -> `max-connections`); a list or tuple value repeats the option
    (`key=[old, new]` gives two `key =` lines). Values are written as `str(value)`."""
    lines = [f"[{name}]"]
    for option, value in options.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            lines.append(f"{option.replace('_', '-')} = {item}")
    return "\n".join(lines) + "\n"


def config_text(*sections, global_lines=()):
    """A whole file: the global lines, then the sections, separated by blank lines."""
    head = "".join(f"{line}\n" for line in global_lines)
    return head + "\n".join(sections)


def write_config(path, text):
    """Writes `text` to `path` through a temporary file and a rename, as configuration
    management does, so a reload never reads a half-written file. Returns `path`."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path


def replace_key(path, data):
    """Gives the key file `path` new contents (through a rename, owner-only mode)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o600)
    os.replace(temporary, path)
    return path


def reload_outcomes(log):
    """(summary lines, failure count) found in the log text `log`."""
    return RELOAD_SUMMARY.findall(log), log.count(RELOAD_FAILED)


def sighup_and_wait(pid, log_text, alive=None, timeout=10.0):
    """Sends SIGHUP to `pid` and waits until its log (read with the callable `log_text`) shows
    the outcome: a new summary line or a new "reload failed" line. Returns (ok, new log text):
    ok is True for a summary line, False for a failure. Raises AssertionError on a timeout, or
    as soon as the callable `alive` (if given) says the process has exited."""
    before = log_text()
    summaries, failures = reload_outcomes(before)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and not alive():
            raise AssertionError(f"the process exited after SIGHUP; log since:\n"
                                 f"{log_text()[len(before):]}")
        text = log_text()
        now_summaries, now_failures = reload_outcomes(text)
        if now_failures > failures:
            return False, text[len(before):]
        if len(now_summaries) > len(summaries):
            return True, text[len(before):]
        if time.monotonic() > deadline:
            raise AssertionError(f"no reload outcome in the log {timeout}s after SIGHUP; "
                                 f"log since:\n{text[len(before):]}")
        time.sleep(0.01)
