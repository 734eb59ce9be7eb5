"""Run a Slicer scripted module through Slicer's own Python layer, on real MRML, with stand-ins only for Qt/CTK.

``slicer_session()`` builds, for the duration of a ``with`` block, what a Slicer 5.12.3 application gives Python:

- ``slicer``: Slicer's real package (``../shared/slicer/v5.12.3/Base/Python/slicer``: its ``__init__.py``, util,
  ScriptedLoadableModule, parameterNodeWrapper, packaging, i18n, ...) holding slicer-core's MRML/VTK classes, the
  ``slicer.q*`` widget stand-ins, ``app``, ``mrmlScene``, ``modules``, ``moduleNames``;
- ``qt``/``ctk``: the stand-ins of ``standins/``;
- a fresh real vtkMRMLScene with what Slicer's start-up puts in it: a vtkSlicerApplicationLogic (selection and
  interaction nodes), the Colors/Sequences/Markups/Volumes module logics, the layout logic's layout node and views,
  and one real vtkMRMLSliceLogic (with its composite node) per slice view, as the layout manager creates them;
- SampleData, MarkupsLib (imported, as the Markups module does, so its GUI connector is registered) and
  PyTorchUtils importable, and a ``PythonSlicer`` on PATH that records what it is asked to run (pip) and exits 0.

Everything it adds to ``sys.modules``, ``sys.path``, ``sys.meta_path`` and ``PATH`` is removed or restored when the
block ends, so slicer-core's own ``slicer`` package (and ``slicer.util``) is back for the rest of the test run.
See README.md for what this can and cannot verify.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import re
import sys
import tempfile
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_SLICER = REPO.parent / "shared" / "slicer"
SLICER_LAYER = SHARED_SLICER / "v5.12.3"
SLICER_PACKAGE = SLICER_LAYER / "Base" / "Python" / "slicer"
SAMPLE_DATA_DIR = SLICER_LAYER / "Modules" / "Scripted" / "SampleData"
MARKUPS_DIR = SLICER_LAYER / "Modules" / "Loadable" / "Markups"
PYTORCH_UTILS_DIR = SHARED_SLICER / "SlicerPyTorch"
TEMPLATE_DIR = SLICER_LAYER / "Utilities" / "Templates" / "Modules" / "Scripted"

_ABSENT_REASON = f"Slicer 5.12.3's Python layer not found at {SLICER_LAYER}: ../shared/slicer is absent"
requires_slicer_layer = pytest.mark.skipif(not (SLICER_PACKAGE / "util.py").is_file(), reason=_ABSENT_REASON)

_STANDIN_PACKAGE = __name__.rpartition(".")[0] + ".standins" if "." in __name__ else "standins"
_PIP_LOG_VARIABLE = "SLICER_APP_HARNESS_PYTHONSLICER_LOG"
_EXIT_CODE_VARIABLE = "SLICER_APP_HARNESS_PYTHONSLICER_EXIT_CODE"


def _standins():
    names = ("runtime", "qt", "ctk", "widgets", "modules", "layout", "io_manager", "application")
    return types.SimpleNamespace(**{n: importlib.import_module(f"{_STANDIN_PACKAGE}.{n}") for n in names})


# ---------------------------------------------------------------------------------------------------------------
# Hiding installed packages


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


class _HidingFinder:
    """Wraps one ``sys.meta_path`` finder so that the hidden top-level packages cannot be found: ``import``
    raises ModuleNotFoundError, ``importlib.util.find_spec`` returns None and ``importlib.metadata`` raises
    PackageNotFoundError (no distribution of that name is listed), as if they were not installed."""

    def __init__(self, inner, hidden: frozenset[str]):
        self._inner = inner
        self._hidden = hidden
        self._canonical = frozenset(_canonical(n) for n in hidden)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self._hidden:
            return None
        find = getattr(self._inner, "find_spec", None)
        return find(fullname, path, target) if find is not None else None

    def find_distributions(self, *args, **kwargs):
        find = getattr(self._inner, "find_distributions", None)
        if find is None:
            return iter(())
        return (d for d in find(*args, **kwargs) if _canonical(self._dist_name(d)) not in self._canonical)

    @staticmethod
    def _dist_name(dist) -> str:
        return getattr(dist, "_normalized_name", None) or dist.metadata["Name"] or ""

    def __getattr__(self, name):
        return getattr(self._inner, name)


# ---------------------------------------------------------------------------------------------------------------
# The session


def _recorded(name: str, doc: str):
    """A session attribute that reads what the stand-ins recorded in the session's runtime."""
    return property(lambda session: getattr(session._runtime, name), doc=doc)


class SlicerSession:
    """What a test sees inside ``slicer_session()``; see the module docstring and README.md."""

    def __init__(self, standins, slicer, scene, app, runtime, temporary: Path, hidden=frozenset()):
        self._standins = standins
        self._hidden = hidden
        self.slicer = slicer
        self.qt = standins.qt
        self.ctk = standins.ctk
        self.scene = scene
        self.app = app
        self._runtime = runtime
        self._temporary = temporary
        self._pymodules: dict[str, types.ModuleType] = {}
        self._widgets: dict[str, object] = {}
        self._loaded_folders: list[Path] = []
        self.selected_module = ""

    # -- what the session recorded ---------------------------------------------------------------------------
    dialogs = _recorded("dialogs", "Message boxes and dialogs (runtime.Dialog) a real session would have shown.")
    progress_dialogs = _recorded("progress_dialogs", "Every qt.QProgressDialog created in the session.")
    slot_errors = _recorded("slot_errors", "Exceptions raised in slots and timer callbacks (PythonQt prints them "
                            "and carries on). The session fails at its end if any are left here: clear the list in "
                            "a test that expects one.")
    opened_urls = _recorded("opened_urls", "URLs given to qt.QDesktopServices.openUrl (nothing is opened).")
    settings = _recorded("settings", "The session's in-memory QSettings store.")

    @property
    def python_slicer_calls(self) -> list[list[str]]:
        """Argument lists the ``PythonSlicer`` on PATH was run with (e.g. ``["-m", "pip", "install", ...]``)."""
        log = Path(os.environ[_PIP_LOG_VARIABLE])
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    @property
    def python_slicer_exit_code(self) -> int:
        return int(os.environ[_EXIT_CODE_VARIABLE])

    @python_slicer_exit_code.setter
    def python_slicer_exit_code(self, code: int):
        os.environ[_EXIT_CODE_VARIABLE] = str(int(code))

    # -- scripted answers ------------------------------------------------------------------------------------
    def answer_confirm(self, answer: bool) -> None:
        """How the user answers the following confirmation boxes: True OK/Yes/Retry (the default), False
        Cancel/No/Close."""
        self._runtime.confirm_answer = bool(answer)

    @property
    def file_dialog_answer(self):
        return self._runtime.file_dialog_answer

    @file_dialog_answer.setter
    def file_dialog_answer(self, answer):
        """What the user picks in the following directory dialogs (a path; None/"": Cancel)."""
        self._runtime.file_dialog_answer = answer

    # -- events ----------------------------------------------------------------------------------------------
    def process_events(self) -> int:
        """Run the queued timer callbacks (``qt.QTimer.singleShot``, started QTimers) in due order, advancing the
        virtual clock, until none is left; returns how many ran."""
        return self._runtime.run_until()

    # -- modules ---------------------------------------------------------------------------------------------
    def load_module(self, path):
        """What Slicer's scripted module factory does with ``path``: its folder on sys.path, the file imported
        fresh as a top-level module named after it, the class named like the file instantiated with a module
        parent, and the module registered (``slicer.modules.<lowercase>``, ``slicer.moduleNames.<Name>``,
        ``slicer.modules.<Name>Instance``). Returns (module object, Python module).

        Modules already imported from that folder (e.g. a ``<Name>Lib`` package imported by other tests) are put
        aside for the session when they hold slicer-core's ``slicer``, a hidden package, or such a module's
        objects, so that they are imported again against this session; the others are kept, so their classes
        (exceptions, dataclasses) stay the ones the test imported."""
        path = Path(path).resolve()
        name, folder = path.stem, path.parent
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        self._loaded_folders.append(folder)
        for key in [name, *_session_dependent_modules(folder, self._hidden)]:
            module = sys.modules.pop(key, None)
            parent = sys.modules.get(key.rpartition(".")[0])
            if parent is not None and module is not None and getattr(parent, key.rpartition(".")[2], None) is module:
                delattr(parent, key.rpartition(".")[2])  # so that ``from package import sub`` imports it again
        spec = importlib.util.spec_from_file_location(name, path)
        pymodule = importlib.util.module_from_spec(spec)
        sys.modules[name] = pymodule
        spec.loader.exec_module(pymodule)
        parent = self._standins.modules.qSlicerScriptedLoadableModule(name, path, self)
        instance = getattr(pymodule, name)(parent)
        setattr(self.slicer.modules, name.lower(), parent)
        setattr(self.slicer.moduleNames, name, name)
        setattr(self.slicer.modules, name + "Instance", instance)
        self.app.moduleManager()._register(parent)
        self._pymodules[name] = pymodule
        return parent, pymodule

    def create_widget(self, name):
        """What Slicer does when the module is first shown: a module panel widget with a QVBoxLayout as
        ``parent``, ``<Name>Widget(parent)``, ``setup()`` (exceptions propagate), then the panel gets the scene.
        Sets ``slicer.modules.<Name>Widget`` and returns the widget object."""
        module = self.app.moduleManager().module(name)
        if module is None or name not in self._pymodules:
            raise KeyError(f"module {name!r} is not loaded (use load_module)")
        parent = self._standins.widgets.qSlicerScriptedLoadableModuleWidget()
        parent.setLayout(self.qt.QVBoxLayout())
        widget = getattr(self._pymodules[name], name + "Widget")(parent)
        parent._python_widget = widget
        setattr(self.slicer.modules, name + "Widget", widget)
        widget.setup()
        parent.setMRMLScene(self.scene)
        module._representation = parent
        self._widgets[name] = widget
        return widget

    def enter(self, widget):
        """The module is selected: the panel is shown, ``isEntered`` set, ``enter()`` called."""
        widget.parent.show()
        widget.parent.isEntered = True
        self.selected_module = widget.moduleName
        widget.enter()

    def exit(self, widget):
        """Another module is selected: ``exit()`` called, ``isEntered`` cleared, the panel hidden."""
        widget.exit()
        widget.parent.isEntered = False
        widget.parent.hide()
        if self.selected_module == widget.moduleName:
            self.selected_module = ""

    def select_module(self, name):
        """What the module selector does (``slicer.util.selectModule``)."""
        if self.selected_module and self.selected_module in self._widgets:
            self.exit(self._widgets[self.selected_module])
        if name in self._widgets:
            widget = self._widgets[name]
        elif name in self._pymodules:
            widget = self.create_widget(name)
        else:
            raise RuntimeError(f"cannot select module {name!r}: not loaded in this session")
        self.enter(widget)

    def close_scene(self):
        """File / Close Scene: ``slicer.mrmlScene.Clear(0)`` (StartCloseEvent ... EndCloseEvent)."""
        self.scene.Clear(0)

    # -- end -------------------------------------------------------------------------------------------------
    def _unload_modules(self):
        """Application exit: moduleAboutToBeUnloaded(name) for each module, which calls each widget's cleanup()."""
        manager = self.app.moduleManager()
        for name in list(self._pymodules):
            manager._emit("moduleAboutToBeUnloaded(QString)", name)


def _session_dependent_modules(folder: Path, hidden) -> set[str]:
    """Names of the imported modules under ``folder`` that must be imported again inside a session: those holding
    a ``slicer``/``qt``/``ctk`` module (or objects of one), a hidden package, or a module of this set."""
    candidates = {name: module for name, module in list(sys.modules.items())
                  if _is_under(getattr(module, "__file__", None), folder)}

    def outside(module_name: str) -> bool:
        top = module_name.partition(".")[0]
        return top in ("slicer", "qt", "ctk") or top in hidden

    dependent: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, module in candidates.items():
            if name in dependent:
                continue
            for key, value in list(vars(module).items()):
                if isinstance(value, types.ModuleType):
                    if value.__name__ == f"{name}.{key}":
                        continue  # a package's own submodule: the import system rebinds it
                    source = value.__name__
                else:
                    source = getattr(value, "__module__", None)
                    if not isinstance(source, str):
                        continue
                if outside(source) or source in dependent:
                    dependent.add(name)
                    changed = True
                    break
    return dependent


def _is_under(file, folder: Path) -> bool:
    if not file:
        return False
    try:
        return Path(file).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False


def _python_slicer(bin_dir: Path) -> None:
    script = bin_dir / "PythonSlicer"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open(os.environ[{_PIP_LOG_VARIABLE!r}], 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "print('PythonSlicer (slicer_app harness): ' + ' '.join(sys.argv[1:]))\n"
        f"sys.exit(int(os.environ.get({_EXIT_CODE_VARIABLE!r}, '0')))\n")
    script.chmod(0o755)


def _build_slicer_package(standins, core):
    """Slicer's own ``slicer/__init__.py`` executed as the ``slicer`` package, then filled the way the Slicer
    application fills it: the wrapped MRML/VTK classes (here slicer-core's) and the Qt widget classes."""
    spec = importlib.util.spec_from_file_location("slicer", SLICER_PACKAGE / "__init__.py",
                                                  submodule_search_locations=[str(SLICER_PACKAGE)])
    package = importlib.util.module_from_spec(spec)
    sys.modules["slicer"] = package
    spec.loader.exec_module(package)
    for name in dir(core):
        value = getattr(core, name)
        if not name.startswith("_") and not isinstance(value, types.ModuleType):
            setattr(package, name, value)
    for module in (standins.widgets, standins.modules, standins.layout, standins.application, standins.io_manager):
        for name, value in vars(module).items():
            if re.match(r"q[A-Z]", name) and isinstance(value, type):
                setattr(package, name, value)
    generic = {}

    def __getattr__(name):
        if re.match(r"q(MRML|Slicer)\w+$", name):
            if name not in generic:
                generic[name] = standins.widgets.generic_slicer_class(name)
            return generic[name]
        raise AttributeError(f"module 'slicer' has no attribute {name!r}")

    package.__getattr__ = __getattr__
    return package


def _build_application(session_holder, standins, slicer, testing_enabled, temporary: Path):
    """The MRML side of Slicer's start-up, then the application object."""
    scene = slicer.vtkMRMLScene()
    cache = slicer.vtkCacheManager()
    (temporary / "cache").mkdir()
    cache.SetRemoteCacheDirectory(str(temporary / "cache"))
    io = slicer.vtkDataIOManager()
    io.SetCacheManager(cache)
    scene.SetCacheManager(cache)
    scene.SetDataIOManager(io)

    application_logic = slicer.vtkSlicerApplicationLogic()
    application_logic.SetTemporaryPath(str(temporary))
    application_logic.SetHomeDirectory(str(temporary))
    (temporary / "share" / "ColorFiles").mkdir(parents=True)  # no colour files: pip's slicer-core ships none
    application_logic.SetShareDirectory("share")  # relative to the home directory
    application_logic.SetMRMLScene(scene)

    core_logics = {}
    for name, cls in (("Colors", "vtkSlicerColorLogic"), ("Sequences", "vtkSlicerSequencesLogic"),
                      ("Markups", "vtkSlicerMarkupsLogic"), ("Volumes", "vtkSlicerVolumesLogic")):
        logic = getattr(slicer, cls)()
        logic.SetMRMLApplicationLogic(application_logic)
        logic.SetMRMLScene(scene)
        application_logic.SetModuleLogic(name, logic)
        core_logics[name] = logic
    application_logic.SetColorLogic(core_logics["Colors"])

    layout_logic = slicer.vtkMRMLLayoutLogic()
    layout_logic.SetMRMLApplicationLogic(application_logic)
    layout_logic.SetMRMLScene(scene)
    layout_manager = standins.layout.qSlicerLayoutManager(scene, application_logic, layout_logic)
    io_manager = standins.io_manager.qSlicerCoreIOManager(core_logics["Volumes"])
    app = standins.application.qSlicerApplication(
        session_holder, application_logic=application_logic, layout_manager=layout_manager,
        io_manager=io_manager, testing_enabled=testing_enabled)
    return scene, app, layout_manager, core_logics


def _detach_logics(application_logic, logics) -> None:
    """Application exit: the slice logics, ``logics`` and the application logic leave the scene, as when Slicer
    quits. A logic left attached may be destroyed at interpreter exit (Python frees what is left in any order) after
    a slice logic it notifies, which crashes the process."""
    if application_logic is None:
        return
    slices = application_logic.GetSliceLogics()
    for logic in [*(slices.GetItemAsObject(i) for i in range(slices.GetNumberOfItems())), *logics, application_logic]:
        logic.SetMRMLScene(None)


def _owned(name: str, module, session_objects, owned_dirs) -> bool:
    """Whether a module added during the session belongs to it (and must not outlive it)."""
    if name in ("slicer", "qt", "ctk", "SampleData", "PyTorchUtils") or name.startswith(("slicer.", "MarkupsLib")):
        return True
    if any(_is_under(getattr(module, "__file__", None), folder) for folder in owned_dirs):
        return True
    namespace = getattr(module, "__dict__", {})
    return any(value is obj for value in list(namespace.values()) for obj in session_objects)


def _rebind_parents(names) -> None:
    """A package whose submodule was imported again in the session got that module as an attribute: point the
    attribute back at the module sys.modules holds now (or drop it)."""
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = sys.modules.get(parent_name) if parent_name else None
        if parent is None:
            continue
        current = sys.modules.get(name)
        if current is not None:
            if getattr(parent, child, None) is not current:
                setattr(parent, child, current)
        elif isinstance(getattr(parent, child, None), types.ModuleType):
            delattr(parent, child)


@contextlib.contextmanager
def slicer_session(hide_modules=(), testing_enabled=False):
    """A Slicer application for the duration of the block (see the module docstring); yields a SlicerSession."""
    if not (SLICER_PACKAGE / "util.py").is_file():
        pytest.skip(_ABSENT_REASON)
    core = importlib.import_module("slicer")
    if getattr(core, "__file__", "") and _is_under(core.__file__, SLICER_PACKAGE):
        raise RuntimeError("slicer_session cannot be nested")
    import vtk  # noqa: F401  (loaded once, shared)

    standins = _standins()
    saved_modules = dict(sys.modules)
    saved_path = list(sys.path)
    saved_meta_path = list(sys.meta_path)
    saved_environ = {key: os.environ.get(key) for key in ("PATH", _PIP_LOG_VARIABLE, _EXIT_CODE_VARIABLE)}
    hidden = frozenset(hide_modules)
    temporary_dir = tempfile.TemporaryDirectory(prefix="slicer-app-")
    temporary = Path(temporary_dir.name)
    rt = standins.runtime.Runtime()
    session = None
    application_logic, logics = None, []
    failed = False
    try:
        for key in list(sys.modules):
            if key == "slicer" or key.startswith("slicer.") or key.partition(".")[0] in hidden:
                del sys.modules[key]
        if hidden:
            sys.meta_path[:] = [_HidingFinder(finder, hidden) for finder in sys.meta_path]
            importlib.invalidate_caches()
        (temporary / "bin").mkdir()
        _python_slicer(temporary / "bin")
        os.environ["PATH"] = f"{temporary / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        os.environ[_PIP_LOG_VARIABLE] = str(temporary / "pythonslicer-calls.jsonl")
        os.environ[_EXIT_CODE_VARIABLE] = "0"
        standins.runtime.activate(rt)
        sys.modules["qt"] = standins.qt
        sys.modules["ctk"] = standins.ctk

        slicer = _build_slicer_package(standins, core)
        holder = types.SimpleNamespace(select_module=lambda name: session.select_module(name),
                                       selected_module="")
        scene, app, layout_manager, core_logics = _build_application(holder, standins, slicer, testing_enabled,
                                                                      temporary)
        application_logic, logics = app.applicationLogic(), [layout_manager.layoutLogic(), *core_logics.values()]
        rt.app = app
        slicer.app = app
        slicer.mrmlScene = scene
        for name, logic in core_logics.items():
            module = standins.modules.qSlicerLoadableModule(name, logic=logic)
            setattr(slicer.modules, name.lower(), module)
            setattr(slicer.moduleNames, name, name)
            app.moduleManager()._register(module)
        layout_manager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutConventionalView)

        # What slicerqt.py and the module set-up import at start-up.
        importlib.import_module("slicer.util")
        with contextlib.suppress(Exception):
            importlib.import_module("slicer.cli")
        for folder in (SAMPLE_DATA_DIR, MARKUPS_DIR, PYTORCH_UTILS_DIR):
            sys.path.insert(0, str(folder))
        importlib.import_module("MarkupsLib")  # the Markups module registers its parameterNodeWrapper connector

        session = SlicerSession(standins, slicer, scene, app, rt, temporary, hidden)
        holder.select_module = session.select_module
        app._main_window.moduleSelector()._session = session
        yield session
        session._unload_modules()
    except BaseException:
        failed = True
        raise
    finally:
        _detach_logics(application_logic, logics)
        standins.runtime.activate(None)
        sys.meta_path[:] = [f._inner if isinstance(f, _HidingFinder) else f for f in sys.meta_path]
        session_objects = [sys.modules.get("slicer"), standins.qt, standins.ctk]
        owned_dirs = [SHARED_SLICER, *(session._loaded_folders if session else [])]
        for key in list(sys.modules):
            if key not in saved_modules and _owned(key, sys.modules[key], session_objects, owned_dirs):
                del sys.modules[key]
        touched = {key for key in set(sys.modules) | set(saved_modules)
                   if sys.modules.get(key) is not saved_modules.get(key)}
        for key, module in saved_modules.items():
            if sys.modules.get(key) is not module:
                sys.modules[key] = module
        _rebind_parents(touched)
        sys.path[:] = saved_path
        for key, value in saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        importlib.invalidate_caches()
        temporary_dir.cleanup()
    if rt.slot_errors and not failed:
        details = "\n".join(f"- {e.where}: {e.exception!r}" for e in rt.slot_errors)
        raise AssertionError(f"exceptions were raised inside slots/timers during the session (PythonQt only "
                             f"prints these; clear session.slot_errors if expected):\n{details}")
