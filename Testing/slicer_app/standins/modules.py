"""Stand-ins for Slicer's module objects (``slicer.modules.<name>``, ``slicer.app.moduleManager().module(name)``):
the scripted module's ``parent`` that its ScriptedLoadableModule fills in, and the core modules whose logic a
scripted module may ask for (Colors, Sequences, Markups, Volumes: the real vtkSlicer*Logic of the session).
"""

from __future__ import annotations

from . import qt
from .qt import QObject

qt.register_standin_module(__name__)


class qSlicerAbstractCoreModule(QObject):
    def __init__(self, name, title="", logic=None):
        super().__init__(None)
        self.name = name
        self.title = title or name
        self.categories = []
        self.contributors = []
        self.dependencies = []
        self.helpText = ""
        self.acknowledgementText = ""
        self.icon = None
        self.hidden = False
        self.path = ""
        self._logic = logic

    def logic(self):
        return self._logic

    def isHidden(self):
        return self.hidden

    def widgetRepresentation(self):
        raise NotImplementedError(f"the {self.name} module's GUI is not stood in")

    createNewWidgetRepresentation = widgetRepresentation


class qSlicerLoadableModule(qSlicerAbstractCoreModule):
    """A core (C++) module: only its logic is real."""


class qSlicerScriptedLoadableModule(qSlicerAbstractCoreModule):
    """The ``parent`` of a scripted module: plain attributes the module's constructor sets (title, categories,
    contributors, helpText, acknowledgementText, icon, dependencies), ``path`` = the module's .py file, and
    ``widgetRepresentation()`` that creates and sets up the module widget on first use, as Slicer does."""

    def __init__(self, name, path, session):
        super().__init__(name)
        self.title = ""
        self.path = str(path)
        self._session = session
        self._representation = None

    def logic(self):
        """Slicer returns a generic C++ logic object here; the Python logic lives on the widget."""
        return None

    def widgetRepresentation(self):
        if self._representation is None:
            self._session.create_widget(self.name)
        return self._representation

    def createNewWidgetRepresentation(self):
        raise NotImplementedError("a second widget representation of a scripted module is not stood in")
