"""Stand-in for PythonQt's ``ctk`` module: the CTK widgets Slicer's Python layer and scripted modules use
(collapsible buttons, slider/spin/range widgets, path and directory pickers, colour picker, ctkMessageBox), built
on the qt stand-ins and with CTK's defaults. Unknown ``ctk.ctk*`` names resolve to a distinct generic widget class.
"""

from __future__ import annotations

import os

from . import qt
from .qt import QAbstractButton, QCheckBox, QComboBox, QColor, QGroupBox, QLayout, QLineEdit, QMessageBox, QObject
from .qt import QPushButton, QSettings, QTextBrowser, QWidget, Signal, _DecimalsMixin, _RangeMixin

qt.register_standin_module(__name__)


class ctkCollapsibleButton(QAbstractButton):
    """A checkable button whose ``checked`` is ``not collapsed``; collapsing hides its contents."""

    contentsCollapsed = Signal("bool")

    def __init__(self, *args):
        super().__init__(*args)
        self._checkable = True
        self._checked = True
        self._collapsed_height = 14
        self._flat = False

    def _checked_changed(self):
        self._emit("toggled(bool)", self._checked)
        self._emit("contentsCollapsed(bool)", not self._checked)

    @property
    def collapsed(self):
        return not self._checked

    @collapsed.setter
    def collapsed(self, value):
        self.checked = not value

    def setCollapsed(self, value):
        self.collapsed = value

    def _child_visible(self, child):
        return self._checked

    @property
    def flat(self):
        return self._flat

    @flat.setter
    def flat(self, value):
        self._flat = bool(value)

    def _keep(self, *args):
        pass

    setContentsFrameShape = setContentsFrameShadow = setCollapsedHeight = setButtonTextAlignment = _keep


class ctkCollapsibleGroupBox(QGroupBox):
    def __init__(self, title="", parent=None):
        super().__init__(title, parent)
        self._checkable = True
        self._checked = True

    @property
    def collapsed(self):
        return not self._checked

    @collapsed.setter
    def collapsed(self, value):
        self.checked = not value

    def setCollapsed(self, value):
        self.collapsed = value

    def _child_visible(self, child):
        return self._checked


class ctkCheckBox(QCheckBox):
    pass


class ctkComboBox(QComboBox):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.defaultText = ""
        self.elideMode = qt.Qt.ElideRight

    def setDefaultText(self, text):
        self.defaultText = str(text)


class ctkCheckablePushButton(QPushButton):
    checkBoxToggled = Signal("bool")

    def __init__(self, *args):
        super().__init__(*args)
        self.checkBoxControlsButtonToggleState = False
        self._check_state = qt.Qt.Unchecked

    @property
    def checkState(self):
        return self._check_state

    @checkState.setter
    def checkState(self, value):
        if value != self._check_state:
            self._check_state = value
            self._emit("checkBoxToggled(bool)", value == qt.Qt.Checked)

    def setCheckState(self, value):
        self.checkState = value


class ctkMenuButton(QPushButton):
    pass


class ctkDoubleSpinBox(_DecimalsMixin, QWidget):
    valueChanged = Signal("double", "QString")
    editingFinished = Signal("")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._init_decimals(0.0, 99.99)
        self.suffix = self.prefix = ""


class ctkSliderWidget(_DecimalsMixin, QWidget):
    """Slider + spin box: float value rounded to ``decimals`` (2), range 0..99 by default."""

    valueChanged = Signal("double")
    valueIsChanging = Signal("double")
    rangeChanged = Signal("double,double")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._init_decimals(0.0, 99.0)
        self.suffix = self.prefix = ""
        self.tracking = True

    def setSuffix(self, value):
        self.suffix = str(value)

    def setPrefix(self, value):
        self.prefix = str(value)

    def setTracking(self, value):
        self.tracking = bool(value)

    def spinBox(self):
        raise NotImplementedError("the inner ctkDoubleSpinBox of ctkSliderWidget is not stood in")


class ctkDoubleSlider(_RangeMixin, QWidget):
    """Float slider without decimals rounding."""

    _value_type = float
    _value_signal = "valueChanged(double)"
    valueChanged = Signal("double")
    sliderMoved = Signal("double")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._init_range(0.0, 99.0, 0.0)
        self._single_step = 1.0
        self.orientation = qt.Qt.Horizontal


class ctkDoubleRangeSlider(QWidget):
    """Two values inside [minimum, maximum]; moving one past the other pushes it."""

    valuesChanged = Signal("double,double")
    minimumValueChanged = Signal("double")
    maximumValueChanged = Signal("double")
    rangeChanged = Signal("double,double")

    _decimals = None

    def __init__(self, parent=None):
        super().__init__(parent)
        self._minimum, self._maximum = 0.0, 99.0
        self._min_value, self._max_value = 0.0, 99.0
        self._single_step = 1.0

    def _round(self, value):
        value = float(value)
        return round(value, self._decimals) if self._decimals is not None else value

    def _clamp(self, value):
        return min(max(self._round(value), self._minimum), self._maximum)

    def _apply(self, low, high):
        old = (self._min_value, self._max_value)
        self._min_value, self._max_value = low, high
        if self._min_value != old[0]:
            self._emit("minimumValueChanged(double)", self._min_value)
        if self._max_value != old[1]:
            self._emit("maximumValueChanged(double)", self._max_value)
        if (self._min_value, self._max_value) != old:
            self._emit("valuesChanged(double,double)", self._min_value, self._max_value)

    @property
    def minimumValue(self):
        return self._min_value

    @minimumValue.setter
    def minimumValue(self, value):
        low = self._clamp(value)
        self._apply(low, max(self._max_value, low))

    def setMinimumValue(self, value):
        self.minimumValue = value

    @property
    def maximumValue(self):
        return self._max_value

    @maximumValue.setter
    def maximumValue(self, value):
        high = self._clamp(value)
        self._apply(min(self._min_value, high), high)

    def setMaximumValue(self, value):
        self.maximumValue = value

    def setValues(self, low, high):
        low, high = sorted((self._clamp(low), self._clamp(high)))
        self._apply(low, high)

    @property
    def minimum(self):
        return self._minimum

    @minimum.setter
    def minimum(self, value):
        self.setRange(value, max(self._maximum, float(value)))

    def setMinimum(self, value):
        self.minimum = value

    @property
    def maximum(self):
        return self._maximum

    @maximum.setter
    def maximum(self, value):
        self.setRange(min(self._minimum, float(value)), value)

    def setMaximum(self, value):
        self.maximum = value

    def setRange(self, minimum, maximum):
        self._minimum, self._maximum = self._round(minimum), max(self._round(minimum), self._round(maximum))
        self._apply(self._clamp(self._min_value), self._clamp(self._max_value))

    @property
    def singleStep(self):
        return self._single_step

    @singleStep.setter
    def singleStep(self, value):
        self._single_step = float(value)

    def setSingleStep(self, value):
        self.singleStep = value


class ctkRangeWidget(ctkDoubleRangeSlider):
    """Range slider with spin boxes: values rounded to ``decimals`` (2)."""

    def __init__(self, parent=None):
        self._decimals = 2
        super().__init__(parent)

    @property
    def decimals(self):
        return self._decimals

    @decimals.setter
    def decimals(self, value):
        self._decimals = int(value)

    def setDecimals(self, value):
        self.decimals = value


class ctkPathLineEdit(QWidget):
    """``currentPath`` (a string); setting it emits currentPathChanged(QString) when it changes."""

    currentPathChanged = Signal("QString")
    validInputChanged = Signal("bool")

    Dirs, Drives, Files, Executable, Readable, Writable = 0x1, 0x4, 0x2, 0x40, 0x10, 0x20
    NoDot, NoDotDot = 0x2000, 0x4000

    def __init__(self, parent=None):
        super().__init__(parent if isinstance(parent, QObject) else None)
        self._path = ""
        self.filters = ctkPathLineEdit.Files | ctkPathLineEdit.Dirs
        self.nameFilters = ()
        self.settingKey = ""
        self.label = ""
        self.showHistoryButton = True
        self.showBrowseButton = True

    @property
    def currentPath(self):
        return self._path

    @currentPath.setter
    def currentPath(self, value):
        value = str(value)
        if value != self._path:
            self._path = value
            self._emit("currentPathChanged(QString)", value)

    def setCurrentPath(self, value):
        self.currentPath = value

    def addCurrentPathToHistory(self):
        pass

    def setNameFilters(self, filters):
        self.nameFilters = tuple(filters)

    def setFilters(self, filters):
        self.filters = filters


class ctkDirectoryButton(QWidget):
    """``directory``: "." until set; a new directory is stored as an absolute path (QDir::absolutePath) and
    emits directoryChanged(QString)."""

    directoryChanged = Signal("QString")
    directorySelected = Signal("QString")

    def __init__(self, parent=None):
        super().__init__(parent if isinstance(parent, QObject) else None)
        self._directory = "."
        self.caption = ""
        self.text = ""

    @property
    def directory(self):
        return self._directory

    @directory.setter
    def directory(self, value):
        value = str(value) or "."
        if os.path.abspath(value) == os.path.abspath(self._directory):
            return
        self._directory = os.path.abspath(value)
        self._emit("directoryChanged(QString)", self._directory)

    def setDirectory(self, value):
        self.directory = value


class ctkColorPickerButton(QPushButton):
    colorChanged = Signal("QColor")

    UseCTKColorDialog, ShowAlphaChannel = 0x10000000, 0x1

    def __init__(self, *args):
        super().__init__(*args)
        self._color = QColor("#000000")
        self.displayColorName = True
        self.dialogOptions = 0

    @property
    def color(self):
        return QColor(self._color)

    @color.setter
    def color(self, value):
        value = QColor(value)
        if value != self._color:
            self._color = value
            self._emit("colorChanged(QColor)", QColor(value))

    def setColor(self, value):
        self.color = value


class ctkMessageBox(QMessageBox):
    """QMessageBox with CTK's "don't show again": when ``dontShowAgainSettingsKey`` names a setting holding a
    button, ``exec_()`` returns that button without showing (or recording) anything."""

    def __init__(self, *args):
        super().__init__(*args)
        self.dontShowAgain = False
        self.dontShowAgainVisible = False
        self.dontShowAgainSettingsKey = ""

    def setDontShowAgainSettingsKey(self, key):
        self.dontShowAgainSettingsKey = str(key)

    def exec_(self):
        if self.dontShowAgainSettingsKey:
            saved = QSettings().value(self.dontShowAgainSettingsKey)
            if saved not in (None, "", 0, "0"):
                return int(saved)
        return super().exec_()

    exec = exec_


class ctkFlowLayout(QLayout):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.preferredExpandingDirections = qt.Qt.Horizontal
        self.alignItems = True


class ctkSearchBox(QLineEdit):
    pass


class ctkFittedTextBrowser(QTextBrowser):
    pass


_GENERIC: dict[str, type] = {}


def __getattr__(name):
    if name.startswith("ctk") and name.isidentifier():
        if name not in _GENERIC:
            _GENERIC[name] = qt.generic_class(name, __name__)
        return _GENERIC[name]
    raise AttributeError(f"module 'ctk' (stand-in) has no attribute {name!r}")

