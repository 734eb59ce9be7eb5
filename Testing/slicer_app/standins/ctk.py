"""Stand-in for PythonQt's ``ctk`` module: the CTK widgets Slicer's Python layer and the scripted modules under
test use (collapsible button, slider/spin/range widgets, path and directory pickers, colour picker, ctkMessageBox),
built on the qt stand-ins and with CTK's defaults. Unknown ``ctk.ctk*`` names resolve to a distinct generic widget
class per name.
"""

from __future__ import annotations

import os

from . import qt
from .qt import QAbstractButton, QCheckBox, QColor, QComboBox, QDoubleSpinBox, QMessageBox, QPushButton, QSettings
from .qt import QWidget, Signal, _Affixes, _Bounded, _Decimals, _DoubleRange, qproperty

qt.register_standin_module(__name__)


class ctkCollapsibleButton(QAbstractButton):
    """A checkable button whose ``checked`` is ``not collapsed``; collapsing hides its contents."""

    contentsCollapsed = Signal("bool")
    _checkable = _checked = True
    collapsed = qproperty(get=lambda self: not self.checked, set=lambda self, value: self.setChecked(not value))

    def _checked_changed(self):
        super()._checked_changed()
        self._emit("contentsCollapsed(bool)", not self._checked)

    def _child_visible(self, child):
        return self._checked


class ctkCheckBox(QCheckBox):
    pass


class ctkComboBox(QComboBox):
    defaultText = qproperty("", str)
    elideMode = qproperty(qt.Qt.ElideRight)


class ctkDoubleSpinBox(QDoubleSpinBox):
    pass


class ctkSliderWidget(_Decimals, _Affixes, _DoubleRange):
    """Slider + spin box: float value rounded to ``decimals`` (2), range 0..99 by default."""

    tracking = qproperty(True, bool)


class ctkDoubleSlider(_DoubleRange):
    """Float slider without decimals rounding."""

    orientation = qproperty(qt.Qt.Horizontal)


class ctkDoubleRangeSlider(_Bounded):
    """Two values inside [minimum, maximum]; moving one past the other pushes it."""

    valuesChanged = Signal("double,double")
    minimumValueChanged = Signal("double")
    maximumValueChanged = Signal("double")
    _type = float
    _minimum, _maximum = 0.0, 99.0
    _minimumValue, _maximumValue = 0.0, 99.0

    def _clamp(self, value):
        return min(max(self._coerce(value), self._minimum), self._maximum)

    def _apply(self, low, high):
        old = (self._minimumValue, self._maximumValue)
        self._minimumValue, self._maximumValue = low, high
        if low != old[0]:
            self._emit("minimumValueChanged(double)", low)
        if high != old[1]:
            self._emit("maximumValueChanged(double)", high)
        if (low, high) != old:
            self._emit("valuesChanged(double,double)", low, high)

    def _range_changed(self):
        self._apply(self._clamp(self._minimumValue), self._clamp(self._maximumValue))

    def setValues(self, low, high):
        self._apply(*sorted((self._clamp(low), self._clamp(high))))

    minimumValue = qproperty(set=lambda self, value: self.setValues(value, max(self._maximumValue, self._clamp(value))))
    maximumValue = qproperty(set=lambda self, value: self.setValues(min(self._minimumValue, self._clamp(value)), value))


class ctkRangeWidget(_Decimals, ctkDoubleRangeSlider):
    """Range slider with spin boxes: values rounded to ``decimals`` (2)."""


class ctkPathLineEdit(QWidget):
    """``currentPath`` (a string); setting it emits currentPathChanged(QString) when it changes."""

    currentPathChanged = Signal("QString")
    currentPath = qproperty("", str, "currentPathChanged(QString)")


class ctkDirectoryButton(QWidget):
    """``directory``: "." until set; a new directory is stored as an absolute path (QDir::absolutePath) and
    emits directoryChanged(QString)."""

    directoryChanged = Signal("QString")

    def _set_directory(self, value):
        value = os.path.abspath(str(value) or ".")
        if value != os.path.abspath(self._directory):
            self._directory = value
            self._emit("directoryChanged(QString)", value)

    directory = qproperty(".", set=_set_directory)


class ctkColorPickerButton(QPushButton):
    colorChanged = Signal("QColor")
    color = qproperty(QColor("#000000"), QColor, "colorChanged(QColor)", get=lambda self: QColor(self._color))


class ctkMessageBox(QMessageBox):
    """QMessageBox with CTK's "don't show again": when ``dontShowAgainSettingsKey`` names a setting holding a
    button, ``exec_()`` returns that button without showing (or recording) anything."""

    dontShowAgainSettingsKey = qproperty("", str)

    def exec_(self):
        saved = QSettings().value(self.dontShowAgainSettingsKey) if self.dontShowAgainSettingsKey else None
        if saved not in (None, "", 0, "0"):
            return int(saved)
        return super().exec_()

    exec = exec_


__getattr__ = qt.module_getattr(__name__, "ctk")
