"""mmadn's packages form floors: a module imports only from floors below its own, at module level and inside
functions alike (an import hidden in a function is still a dependency, and the usual way a cycle is papered over).

The order is declared once, here. A new package must be placed in it; an import that runs up (or sideways, between
packages of one floor) fails with the file, the line and the two packages.
"""
import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

# Low -> high. Packages of one floor are siblings and import nothing from each other. ``models.*`` are the
# sub-packages of mmadn/models, with an order of their own; ``models`` alone is its face (models/__init__.py).
# mmadn/__init__.py, the face of the whole library, stands above every floor; nothing inside may import it.
LAYERS: Tuple[Tuple[str, ...], ...] = (
    ('registry', 'version', 'utils'),  # the ground floor: imports no other mmadn package
    ('datasets', ),
    ('models.utils', 'models.losses'),
    ('models.backbones', 'models.distillers'),
    ('models', ),
    ('engine', ),
    ('deploy', ),
    ('analysis', ),
    ('imta', 'odn'),
    ('apis', ),  # what the tools call
)
GROUND = 'utils'
# Imports that still run up, each with the issue that removes it: (file, imported package).
KNOWN_EXCEPTIONS: Set[Tuple[str, str]] = set()

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'mmadn'
FLOOR = {name: floor for floor, names in enumerate(LAYERS) for name in names}
FACE = ''  # the place of mmadn/__init__.py


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def place(module: str) -> Optional[str]:
    """The declared package that ``module`` (dotted, from ``mmadn``) belongs to: the longest declared prefix;
    ``FACE`` for ``mmadn`` itself; None when it is on no floor."""
    parts = module.split('.')[1:]
    for size in range(len(parts), 0, -1):
        if '.'.join(parts[:size]) in FLOOR:
            return '.'.join(parts[:size])
    return FACE if not parts else None


def imported_modules(source: str, module: str, is_package: bool,
                     known: Set[str]) -> Iterator[Tuple[int, str]]:
    """(line, dotted module) of every mmadn import in ``source``, wherever it stands: ``import mmadn.x``,
    ``from mmadn.x import y``, ``from .x import y``, ``from .. import x``. ``from P import n`` counts as an import of
    ``P.n`` where that is a module of ``known``, else of ``P``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] == 'mmadn':
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split('.')
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = '.'.join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ''
            if base.split('.')[0] != 'mmadn':
                continue
            for alias in node.names:
                yield node.lineno, f'{base}.{alias.name}' if f'{base}.{alias.name}' in known else base


def mmadn_files() -> List[Path]:
    return sorted(p for p in PACKAGE.rglob('*.py') if '__pycache__' not in p.parts)


def import_edges() -> Iterator[Tuple[str, int, str, str]]:
    """(file, line, importing package, imported package) of every import between two declared packages."""
    files = mmadn_files()
    known = {module_name(p) for p in files}
    for path in files:
        module = module_name(path)
        source_place = place(module)
        for line, target in imported_modules(path.read_text(), module, path.name == '__init__.py', known):
            target_place = place(target)
            if target_place != source_place:
                yield str(path.relative_to(ROOT)), line, source_place, target_place


def floor_of(name: str) -> int:
    return len(LAYERS) if name == FACE else FLOOR[name]


def test_the_import_reader_sees_every_form():
    source = ('import mmadn.models.utils\nfrom mmadn.deploy import runtime\nfrom . import checkpoint\n'
              'def build():\n    from ..engine.hooks import ADNDistillHook\n    from .. import models\n')
    known = {'mmadn.deploy.runtime', 'mmadn.utils.checkpoint', 'mmadn.models'}
    found = list(imported_modules(source, 'mmadn.utils.runner', False, known))
    assert found == [(1, 'mmadn.models.utils'), (2, 'mmadn.deploy.runtime'), (3, 'mmadn.utils.checkpoint'),
                     (5, 'mmadn.engine.hooks'), (6, 'mmadn.models')]
    assert list(imported_modules('from . import x\n', 'mmadn.odn', True, {'mmadn.odn.x'})) == [(1, 'mmadn.odn.x')]
    assert [place(m) for m in ('mmadn', 'mmadn.models', 'mmadn.models.utils.subnet', 'mmadn.apis.x')] == [
        FACE, 'models', 'models.utils', 'apis']


def test_every_package_stands_on_one_floor():
    assert len(FLOOR) == sum(len(names) for names in LAYERS), 'a package is declared on two floors'
    placed = {module_name(p): place(module_name(p)) for p in mmadn_files()}
    unplaced = sorted(m for m, where in placed.items() if where is None)
    assert not unplaced, f'modules on no floor: {unplaced}; declare their package in LAYERS ({__file__})'
    empty = sorted(set(FLOOR) - set(placed.values()))
    assert not empty, f'LAYERS declares packages that do not exist: {empty}'


def test_no_import_runs_up_or_sideways():
    wrong: Dict[str, List[str]] = {}
    for path, line, source, target in import_edges():
        if floor_of(target) < floor_of(source) or (path, target) in KNOWN_EXCEPTIONS:
            continue
        how = 'up' if floor_of(target) > floor_of(source) else 'sideways (same floor)'
        wrong.setdefault(f'{source} -> {target or "mmadn"}', []).append(f'{path}:{line} ({how})')
    assert not wrong, 'imports against the layer order (low -> high: ' + ' < '.join(
        ', '.join(names) for names in LAYERS) + '):\n' + '\n'.join(
            f'  {edge}: {", ".join(dict.fromkeys(where))}' for edge, where in sorted(wrong.items()))


def test_the_ground_floor_imports_no_other_mmadn_package():
    upward = [f'{path}:{line} imports mmadn.{target}' for path, line, source, target in import_edges()
              if source == GROUND]
    assert not upward, f'mmadn/{GROUND} is the ground floor and imports no other mmadn package: {upward}'


def test_no_known_exception_is_stale():
    """An exception that no longer matches an import must go, so that the list shrinks to nothing."""
    edges = {(path, target) for path, _, _, target in import_edges()}
    stale = sorted(KNOWN_EXCEPTIONS - edges)
    assert not stale, f'these no longer import across the layers: remove them from KNOWN_EXCEPTIONS: {stale}'
