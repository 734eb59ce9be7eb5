"""Stand-in for ``slicer.app`` (qSlicerApplication) and the objects it hands out: the main window (status bar,
module selector), the module manager, settings, the layout manager and the IO manager. The MRML side is real:
``applicationLogic()`` is a vtkSlicerApplicationLogic on the session's scene, with the slice logics of the layout
manager's slice views.

Recorded rather than performed: ``restart()``/``exit()`` (``restart_requests``/``exit_requests``) and override
cursors (``override_cursor_depth``, which must be back to 0 when a request ends).
"""

from __future__ import annotations

from . import qt, runtime
from .qt import QMainWindow, QObject, QSettings, Signal

qt.register_standin_module(__name__)


class CommandOptions:
    """What ``slicer.app.commandOptions()`` answers."""

    def __init__(self, testing_enabled):
        self.testingEnabled = testing_enabled
        self.noMainWindow = False
        self.runPythonAndExit = False
        self.disableMessageHandlers = False
        self.pythonScript = ""
        self.extraPythonScript = ""
        self.disableCLIModules = False
        self.disableScriptedLoadableModules = False
        self.isTestingEnabled = lambda: testing_enabled


class qSlicerModuleSelectorToolBar(QObject):
    """``selectModule(name)`` does what the module selector does: exit the current module, enter the new one."""

    moduleSelected = Signal("QString")

    def __init__(self, session):
        super().__init__(None)
        self._session = session

    def selectModule(self, name):
        self._session.select_module(name)
        self._emit("moduleSelected(QString)", name)

    @property
    def selectedModule(self):
        return self._session.selected_module


class qSlicerMainWindow(QMainWindow):
    def __init__(self, session):
        super().__init__(None)
        self.objectName = "qSlicerMainWindow"
        self._module_selector = qSlicerModuleSelectorToolBar(session)
        self._shown = True

    def moduleSelector(self):
        return self._module_selector

    def pythonConsole(self):
        raise NotImplementedError("there is no Python console in the harness")


class qSlicerAbstractModuleFactoryManager(QObject):
    modulesRegistered = Signal("QStringList")

    def __init__(self, manager):
        super().__init__(None)
        self._manager = manager

    def loadedModuleNames(self):
        return list(self._manager._modules)

    registeredModuleNames = loadedModuleNames


class qSlicerModuleManager(QObject):
    moduleLoaded = Signal("QString")
    moduleAboutToBeUnloaded = Signal("QString")

    def __init__(self):
        super().__init__(None)
        self._modules: dict = {}
        self._factory_manager = qSlicerAbstractModuleFactoryManager(self)

    def _register(self, module):
        self._modules[module.name] = module
        self._emit("moduleLoaded(QString)", module.name)

    def module(self, name):
        return self._modules.get(name)

    def factoryManager(self):
        return self._factory_manager


class _Clipboard:
    def __init__(self):
        self._text = ""

    def setText(self, text):
        self._text = str(text)

    def text(self):
        return self._text


class qSlicerApplication(QObject):
    _startup_completed = Signal("", name="startupCompleted")  # the method below emits it
    lastWindowClosed = Signal("")
    aboutToQuit = Signal("")

    def __init__(self, session, *, scene, application_logic, layout_manager, io_manager, testing_enabled,
                 temporary_path, home):
        super().__init__(None)
        self._session = session
        self._scene = scene
        self._application_logic = application_logic
        self._layout_manager = layout_manager
        self._io_manager = io_manager
        self._testing_enabled = bool(testing_enabled)
        self._command_options = CommandOptions(self._testing_enabled)
        self._module_manager = qSlicerModuleManager()
        self._main_window = qSlicerMainWindow(session)
        self._clipboard = _Clipboard()
        self._thread = qt.QThread.currentThread()
        self._cursor_stack: list = []
        self.override_cursor_depth = 0
        self.restart_requests = 0
        self.exit_requests: list[int] = []
        self.applicationName = "3D Slicer"
        self.applicationVersion = "5.12.3"
        self.majorVersion, self.minorVersion, self.patchVersion = 5, 12, 3
        self.mainApplicationName = "Slicer"
        self.repositoryRevision = "9034c71a8fce68ab312458b3d7d16f610562263d"
        self.temporaryPath = str(temporary_path)
        self.cachePath = str(temporary_path)
        self.defaultScenePath = str(temporary_path)
        self.slicerHome = str(home)
        self.slicerUserSettingsFilePath = ""
        self.extensionsInstallPath = str(temporary_path)
        self.documentationBaseUrl = "https://slicer.readthedocs.io/en/5.12/"
        self.isInstalled = False
        self.releaseType = "Stable"

    # -- identity and options ------------------------------------------------------------------------------------
    def testingEnabled(self):
        return self._testing_enabled

    def commandOptions(self):
        return self._command_options

    def translate(self, context, text):
        return text

    def moduleDocumentationUrl(self, module_name):
        return f"{self.documentationBaseUrl}user_guide/modules/{module_name.lower()}.html"

    def thread(self):
        return self._thread

    def isRelease(self):
        return True

    # -- objects -------------------------------------------------------------------------------------------------
    def mrmlScene(self):
        return self._scene

    def applicationLogic(self):
        return self._application_logic

    def layoutManager(self):
        return self._layout_manager

    def coreIOManager(self):
        return self._io_manager

    ioManager = coreIOManager

    def moduleManager(self):
        return self._module_manager

    def mainWindow(self):
        return self._main_window

    def topLevelWidgets(self):
        return [self._main_window]

    def userSettings(self):
        return QSettings()

    settings = userSettings

    def revisionUserSettings(self):
        return QSettings()

    def clipboard(self):
        return self._clipboard

    def keyboardModifiers(self):
        return qt.Qt.NoModifier

    # -- event loop ----------------------------------------------------------------------------------------------
    def processEvents(self, *flags):
        """Runs the timers already due (a ``singleShot(0, ...)`` queued before), as QApplication does."""
        runtime.current().run_due()

    def startupCompleted(self):
        """Emits startupCompleted(), as Slicer does once every module is loaded (call it from a test)."""
        self._emit("startupCompleted()")

    # -- cursors -------------------------------------------------------------------------------------------------
    def setOverrideCursor(self, cursor):
        self._cursor_stack.append(cursor)
        self.override_cursor_depth = len(self._cursor_stack)

    def restoreOverrideCursor(self):
        if self._cursor_stack:
            self._cursor_stack.pop()
        self.override_cursor_depth = len(self._cursor_stack)

    def overrideCursor(self):
        return qt.QCursor(self._cursor_stack[-1]) if self._cursor_stack else None

    # -- requests that would end the process ---------------------------------------------------------------------
    def restart(self):
        self.restart_requests += 1

    def exit(self, status=0):
        self.exit_requests.append(status)

    quit = exit

    def launchDesigner(self, *args):
        raise NotImplementedError("Qt Designer cannot be launched from the harness")

    def pythonConsole(self):
        raise NotImplementedError("there is no Python console in the harness")

