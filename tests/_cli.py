"""Run the project's command-line tools as a user would: in a subprocess (``run_tool``), or, where the test is
about what a tool says and not about the process, in this process (``run_main``: no second torch + mmdet
import, a few seconds a call on this project's CPU machines)."""
import inspect
import os
import subprocess
import sys
import traceback
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Threads of every tool run: the caller's OMP_NUM_THREADS (``make test`` gives each of its parallel pytest workers
# one), else 2, this project's CPU machines.
THREADS = os.environ.get('OMP_NUM_THREADS', '2')


def run_tool(*args, timeout=600, check=True, env=None):
    cmd = [sys.executable, *[str(a) for a in args]]
    full_env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': THREADS, **(env or {})}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)
    output = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} exited with {proc.returncode}:\n{output[-6000:]}')
    return proc.returncode, output


def load_tool(path):
    """A tool script (path relative to the repository) imported as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(capsys, path, *argv):
    """Run a tool's main() in this process: (exit code, stdout + stderr), as the tool would end in a shell.

    ``argv`` reaches main() as its argument, or as ``sys.argv`` for a main() that reads the command line
    itself. An uncaught exception gives exit code 1 and its traceback, warnings are printed as Python prints
    them, and what the tool changes in ``os.environ`` (LOCAL_RANK) or ``sys.path`` is put back afterwards."""
    argv = [str(a) for a in argv]
    saved_argv, saved_path, saved_environ = sys.argv, list(sys.path), dict(os.environ)
    capsys.readouterr()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            try:
                sys.argv = [os.path.join(ROOT, path), *argv]
                main = load_tool(path).main
                code = (main(argv) if inspect.signature(main).parameters else main()) or 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
                if not isinstance(exit_.code, int) and exit_.code is not None:
                    print(exit_.code, file=sys.stderr)
            except Exception:  # noqa: BLE001  (the interpreter's own ending of a tool)
                traceback.print_exc()
                code = 1
        for warning in caught:
            print(warnings.formatwarning(warning.message, warning.category, warning.filename, warning.lineno),
                  end='', file=sys.stderr)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        os.environ.clear()
        os.environ.update(saved_environ)
    captured = capsys.readouterr()
    return code, captured.out + captured.err
