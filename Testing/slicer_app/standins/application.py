"""Stand-in for ``slicer.app`` (qSlicerApplication) and the objects it hands out: the main window (status bar,
module selector), the module manager, settings, the layout manager and the IO manager. The MRML side is real:
``applicationLogic()`` is a vtkSlicerApplicationLogic on the session's scene, with the slice logics of the layout
manager's slice views.

Recorded rather than performed: override cursors (``override_cursor_depth``, which must be back to 0 when a request
ends).
"""

from __future__ import annotations

import types

from . import qt, runtime
from .qt import QMainWindow, QObject, Signal

qt.register_standin_module(__name__)


class qSlicerModuleSelectorToolBar(QObject):
    """``selectModule(name)`` does what the module selector does: exit the current module, enter the new one."""

    moduleSelected = Signal("QString")

    def __init__(self, session):
        super().__init__(None)
        self._session = session

    def selectModule(self, name):
        self._session.select_module(name)
        self._emit("moduleSelected(QString)", name)

    selectedModule = property(lambda self: self._session.selected_module)


class qSlicerMainWindow(QMainWindow):
    def __init__(self, session):
        super().__init__(None)
        self.objectName = "qSlicerMainWindow"
        self._module_selector = qSlicerModuleSelectorToolBar(session)
        self._shown = True

    def moduleSelector(self):
        return self._module_selector


class qSlicerModuleManager(QObject):
    moduleLoaded = Signal("QString")
    moduleAboutToBeUnloaded = Signal("QString")

    def __init__(self):
        super().__init__(None)
        self._modules: dict = {}

    def _register(self, module):
        self._modules[module.name] = module
        self._emit("moduleLoaded(QString)", module.name)

    def module(self, name):
        return self._modules.get(name)


class qSlicerApplication(QObject):
    _startup_completed = Signal("", name="startupCompleted")  # the method below emits it
    applicationName = "3D Slicer"

    def __init__(self, session, *, application_logic, layout_manager, io_manager, testing_enabled):
        super().__init__(None)
        self._application_logic = application_logic
        self._layout_manager = layout_manager
        self._io_manager = io_manager
        self._testing_enabled = bool(testing_enabled)
        self._module_manager = qSlicerModuleManager()
        self._main_window = qSlicerMainWindow(session)
        self._thread = qt.QThread.currentThread()
        self._cursor_stack: list = []
        self.override_cursor_depth = 0

    def testingEnabled(self):
        return self._testing_enabled

    def commandOptions(self):
        return types.SimpleNamespace(testingEnabled=self._testing_enabled)

    def translate(self, context, text):
        return text

    def thread(self):
        return self._thread

    def applicationLogic(self):
        return self._application_logic

    def layoutManager(self):
        return self._layout_manager

    def coreIOManager(self):
        return self._io_manager

    def moduleManager(self):
        return self._module_manager

    def topLevelWidgets(self):
        return [self._main_window]

    def processEvents(self, *flags):
        """Runs the timers already due (a ``singleShot(0, ...)`` queued before), as QApplication does."""
        runtime.current().run_due()

    def startupCompleted(self):
        """Emits startupCompleted(), as Slicer does once every module is loaded (call it from a test)."""
        self._emit("startupCompleted()")

    def setOverrideCursor(self, cursor):
        self._cursor_stack.append(cursor)
        self.override_cursor_depth = len(self._cursor_stack)

    def restoreOverrideCursor(self):
        if self._cursor_stack:
            self._cursor_stack.pop()
        self.override_cursor_depth = len(self._cursor_stack)
