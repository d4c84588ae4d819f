"""Run the project's command-line tools in a subprocess, as a user would."""
import os
import subprocess
import sys

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
    """Run a tool's main() in this process (its imports are already paid for): (exit code, stdout + stderr)."""
    capsys.readouterr()
    try:
        code = load_tool(path).main([str(a) for a in argv]) or 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
        if not isinstance(exit_.code, int) and exit_.code is not None:
            print(exit_.code)
    captured = capsys.readouterr()
    return code, captured.out + captured.err
