"""Stand-ins for Slicer's module objects (``slicer.modules.<name>``, ``slicer.app.moduleManager().module(name)``):
the scripted module's ``parent`` that its ScriptedLoadableModule fills in, and the core modules whose logic a
scripted module may ask for (Colors, Sequences, Markups, Volumes: the real vtkSlicer*Logic of the session).
"""

from __future__ import annotations

from . import qt
from .qt import QObject

qt.register_standin_module(__name__)


class qSlicerAbstractCoreModule(QObject):
    """``name`` (the objectName, as in Slicer) and ``logic()``."""

    def __init__(self, name, logic=None):
        super().__init__(None)
        self.name = name
        self._logic = logic

    def logic(self):
        return self._logic


class qSlicerLoadableModule(qSlicerAbstractCoreModule):
    """A core (C++) module: only its logic is real."""


class qSlicerScriptedLoadableModule(qSlicerAbstractCoreModule):
    """The ``parent`` of a scripted module: plain attributes its constructor sets (title, categories, contributors,
    helpText, acknowledgementText, icon, dependencies), ``path`` = the module's .py file, no C++ logic (the Python
    logic lives on the widget), and ``widgetRepresentation()`` that creates and sets up the module widget on first
    use, as Slicer does."""

    def __init__(self, name, path, session):
        super().__init__(name)
        self.title = ""
        self.path = str(path)
        self._session = session
        self._representation = None

    def widgetRepresentation(self):
        if self._representation is None:
            self._session.create_widget(self.name)
        return self._representation
