"""Stand-in for PythonQt's ``qt`` module: the Qt classes that Slicer's Python layer and the scripted modules under
test use, with the behaviour the tests rely on (signals, properties, parent/children, layouts, combobox/slider/spin
box semantics, modal dialogs answered by the session, timers on a virtual clock). Nothing is drawn.

Conventions copied from PythonQt: Qt properties are Python attributes (``w.enabled = False``), declared with
``qproperty`` (which also provides the ``setX`` method); a signal is connected either by its signature
(``w.connect("clicked(bool)", slot)``) or as an attribute (``w.clicked.connect(slot)``); a slot receives only as
many signal arguments as it accepts; an exception in a slot is printed, not propagated (the session records it in
``slot_errors``).

Only what the harness's tests exercise is stood in. Unknown ``qt.Q*`` names resolve to a distinct generic widget
class per name (so code that merely names a class works); a method a class does not have raises AttributeError,
and one that cannot behave like Qt raises NotImplementedError instead of pretending.
"""

from __future__ import annotations

import html
import inspect
import os
import re
import threading
import time

from . import runtime

# ---------------------------------------------------------------------------------------------------------------
# Signals


def _normalize(signature: str) -> str:
    """``"currentNodeChanged(vtkMRMLNode*)"`` and ``" clicked( bool ) "`` in Qt's normalized form."""
    name, _, args = signature.strip().partition("(")
    parts = [re.sub(r"\s*\*", "*", arg.replace("const ", "").replace("&", "").strip())
             for arg in args.rstrip(")").split(",")]
    return f"{name.strip()}({','.join(part for part in parts if part)})"


def _max_positional(slot) -> int | None:
    """How many positional arguments ``slot`` accepts (None: any number), as PythonQt inspects it."""
    count = 0
    for param in inspect.signature(slot).parameters.values():
        if param.kind == param.VAR_POSITIONAL:
            return None
        count += param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
    return count


class Signal:
    """Class attribute declaring a signal and its overloads: ``clicked = Signal("bool", "")`` declares
    ``clicked(bool)`` (the default overload, the one ``w.clicked.connect`` uses) and ``clicked()``."""

    def __init__(self, *overloads: str, name: str = ""):
        self.overloads = overloads or ("",)
        self.name = name

    def __set_name__(self, owner, name):
        self.name = self.name or name

    def signatures(self) -> list[str]:
        return [_normalize(f"{self.name}({args})") for args in self.overloads]

    def __get__(self, obj, owner=None):
        return self if obj is None else BoundSignal(obj, self.signatures()[0])


class BoundSignal:
    """``widget.clicked``: connect/disconnect on the default overload."""

    def __init__(self, obj, signature):
        self._obj = obj
        self._signature = signature

    def connect(self, slot):
        return self._obj.connect(self._signature, slot)

    def disconnect(self, slot=None):
        return self._obj.disconnect(self._signature, slot)


def _declared_signals(cls) -> dict[str, str]:
    """Normalized signature -> signal name, over the class hierarchy."""
    if "_signal_table" not in cls.__dict__:
        cls._signal_table = {signature: value.name for klass in reversed(cls.__mro__) for value in vars(klass).values()
                             if isinstance(value, Signal) for signature in value.signatures()}
    return cls._signal_table


def _slot(slot_or_receiver, slot_signature):
    """The callable a ``connect``/``disconnect`` names: a callable, or a receiver and its slot's signature."""
    if isinstance(slot_signature, str):
        return getattr(slot_or_receiver, _normalize(slot_signature).partition("(")[0])
    return slot_or_receiver


# ---------------------------------------------------------------------------------------------------------------
# Properties


class qproperty:
    """A Qt property as PythonQt shows it: a Python attribute (``w.enabled = False``) and the ``setX`` method Qt
    declares as its WRITE function (added to the class unless the class defines it).

    By default the value is kept in ``self._<name>`` (a class attribute holds ``default``; a subclass may set
    another); setting it applies ``convert`` and, with ``signal``, emits that signature with the new value when the
    value changed. ``get``/``set`` (functions, or names of methods so that subclasses can override them) replace
    reading or writing the kept value."""

    def __init__(self, default=None, convert=None, signal=None, *, get=None, set=None):
        self.default, self.convert, self.signal, self.get, self.set = default, convert, signal, get, set
        self.name = None

    def __set_name__(self, owner, name):
        if self.name is not None:  # a second name for the same property (QObject.name): no second setter
            return
        self.name, self.storage = name, "_" + name
        if self.storage not in vars(owner) and not (self.get and self.set):
            setattr(owner, self.storage, self.default)
        setter = "set" + name[0].upper() + name[1:]
        if setter not in vars(owner):
            def write(obj, value):
                setattr(obj, name, value)

            write.__name__ = write.__qualname__ = setter
            setattr(owner, setter, write)

    @staticmethod
    def _call(function, obj, *args):
        return getattr(obj, function)(*args) if isinstance(function, str) else function(obj, *args)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        if self.get is not None:
            return self._call(self.get, obj)
        return getattr(obj, self.storage)

    def __set__(self, obj, value):
        if self.set is not None:
            self._call(self.set, obj, value)
            return
        value = self.convert(value) if self.convert is not None else value
        changed = value != getattr(obj, self.storage)
        setattr(obj, self.storage, value)
        if self.signal and changed:
            obj._emit(self.signal, value)


def _qt_properties(cls) -> set[str]:
    if "_property_names" not in cls.__dict__:
        cls._property_names = {name for klass in cls.__mro__ for name, value in vars(klass).items()
                               if isinstance(value, (property, qproperty)) and not name.startswith("_")}
    return cls._property_names


def _ignored(self, *args):
    """Nothing is drawn: a cosmetic setting (size, font, window flags, ...) has no effect."""


def _parent_and_texts(args):
    """(parent, strings) of a constructor that takes them in any order: ``QLabel(text, parent)``, ``QLabel(parent)``."""
    return next((a for a in args if isinstance(a, QObject)), None), [a for a in args if isinstance(a, str)]


# ---------------------------------------------------------------------------------------------------------------
# QObject / QWidget


_STANDIN_MODULES = {__name__}


def register_standin_module(name: str) -> None:
    """The other stand-in modules register themselves so that className() sees their classes as Qt classes."""
    _STANDIN_MODULES.add(name)


class QObject:
    """objectName (also ``name``), parent/children, dynamic properties, signals."""

    objectNameChanged = Signal("QString")
    objectName = qproperty("", str, "objectNameChanged(QString)")
    name = objectName
    _accepts_any_signal = False

    def __init__(self, parent=None, *args, **kwargs):
        self._parent = None
        self._children = []
        self._dynamic = {}
        self._connections = {}
        self._signals_blocked = False
        if isinstance(parent, QObject):
            self.setParent(parent)

    def className(self):
        return next(klass.__name__ for klass in type(self).__mro__ if klass.__module__ in _STANDIN_MODULES)

    def __repr__(self):
        return f"{self.className()} ({self.objectName or 'unnamed'})"

    # -- tree ------------------------------------------------------------------------------------------------------
    def parent(self):
        return self._parent

    def setParent(self, parent):
        if self._parent is parent:
            return
        if self._parent is not None:
            self._parent._children.remove(self)
        self._parent = parent
        if parent is not None:
            parent._children.append(self)

    def children(self):
        return list(self._children)

    def findChildren(self, cls=None, name=""):
        found = []
        for child in self._children:
            if (cls is None or isinstance(child, cls)) and (not name or child.objectName == name):
                found.append(child)
            found.extend(child.findChildren(cls, name))
        return found

    def deleteLater(self):
        """Qt deletes the object when control returns to the event loop; Python's references keep it here."""

    # -- properties ------------------------------------------------------------------------------------------------
    def property(self, name):
        if name in self._dynamic:
            return self._dynamic[name]
        return getattr(self, name) if name in _qt_properties(type(self)) else None

    def setProperty(self, name, value):
        if name in _qt_properties(type(self)):
            setattr(self, name, value)
            return True
        self._dynamic[name] = value
        return False  # Qt returns false for dynamic properties

    # -- signals ---------------------------------------------------------------------------------------------------
    def _resolve_signal(self, signal: str) -> str:
        signature = _normalize(signal)
        table = _declared_signals(type(self))
        if signature in table or self._accepts_any_signal:
            return signature
        known = sorted(s for s in table if s.startswith(signature.partition("(")[0] + "("))
        hint = f" (it has {', '.join(known)})" if known else ""
        raise ValueError(f"{self.className()} has no signal {signature}{hint}; real Qt would print a warning and "
                         "leave the slot unconnected")

    def connect(self, signal, slot_or_receiver, slot_signature=None, *_connection_type):
        signature = self._resolve_signal(signal)
        slot = _slot(slot_or_receiver, slot_signature)
        if not callable(slot):
            raise TypeError(f"cannot connect {signature} to {slot!r}: not callable")
        self._connections.setdefault(signature, []).append(slot)
        return True

    def disconnect(self, signal=None, slot_or_receiver=None, slot_signature=None):
        if signal is None:
            self._connections.clear()
            return True
        slots = self._connections.get(self._resolve_signal(signal), [])
        if slot_or_receiver is None:
            had = bool(slots)
            slots.clear()
            return had
        slot = _slot(slot_or_receiver, slot_signature)
        if slot in slots:
            slots.remove(slot)
            return True
        return False

    def blockSignals(self, block):
        previous, self._signals_blocked = self._signals_blocked, bool(block)
        return previous

    def _emit(self, signature, *args):
        if self._signals_blocked:
            return
        rt = runtime.current()
        for slot in list(self._connections.get(signature, [])):
            count = _max_positional(slot)
            rt.call_slot(slot, args if count is None else args[:count], f"slot of {self.className()}.{signature}")


class QWidget(QObject):
    """Enabled/visible/toolTip/windowTitle/layout. ``enabled`` is Qt's isEnabled() (also every ancestor enabled);
    ``visible`` is Qt's isVisible(): shown itself and all its ancestors, the top-level one shown explicitly (the
    session shows the module panel on ``enter``)."""

    windowTitleChanged = Signal("QString")
    _hidden_explicitly = _shown = False
    _layout = _parent_layout = None

    def _is_enabled(self):
        return self._enabled and (not isinstance(self._parent, QWidget) or self._parent.enabled)

    def _is_visible(self):
        if self._hidden_explicitly:
            return False
        if isinstance(self._parent, QWidget):
            return self._parent.visible and self._parent._child_visible(self)
        return self._shown

    def _set_visible(self, value):
        self._hidden_explicitly = not value
        if value and not isinstance(self._parent, QWidget):
            self._shown = True

    enabled = qproperty(True, bool, get=_is_enabled)
    visible = qproperty(get=_is_visible, set=_set_visible)
    toolTip = qproperty("", str)
    windowTitle = qproperty("", str, "windowTitleChanged(QString)")

    def isWidgetType(self):
        return True

    def _child_visible(self, child) -> bool:
        """Containers that hide their contents (e.g. a collapsed ctkCollapsibleButton) override this."""
        return True

    def show(self):
        self.visible = True

    def hide(self):
        self.visible = False

    def layout(self):
        return self._layout

    def setLayout(self, layout):
        if self._layout is not None:
            print(f"QWidget::setLayout: Attempting to set QLayout on {self.className()} which already has a layout")
            return
        self._layout = layout
        layout._attach(self)

    resize = setFont = setMinimumHeight = setMaximumHeight = setWindowFlags = _ignored

    def windowFlags(self):
        return 0


class _GenericWidget(QWidget):
    """Fallback for Qt/CTK/Slicer classes without an explicit stand-in: it accepts any signal connection and any
    property, and has no behaviour (calling an unknown method raises AttributeError)."""

    _accepts_any_signal = True

    def __init__(self, *args, **kwargs):
        super().__init__(_parent_and_texts(args)[0])


def generic_class(name: str, module: str, base=_GenericWidget):
    return type(name, (base,), {"__module__": module, "__doc__": f"generic stand-in for {name}"})


def module_getattr(module: str, prefix: str, base=_GenericWidget):
    """A stand-in module's ``__getattr__``: any other name starting with ``prefix`` is a distinct generic class."""
    generic: dict[str, type] = {}

    def __getattr__(name):
        if name.startswith(prefix) and name.isidentifier():
            if name not in generic:
                generic[name] = generic_class(name, module, base)
            return generic[name]
        raise AttributeError(f"module {module.rpartition('.')[2]!r} (stand-in) has no attribute {name!r}")

    return __getattr__


# ---------------------------------------------------------------------------------------------------------------
# Namespace constants and values


class Qt:
    """The ``Qt::`` namespace values the stand-ins and the code under test name."""

    WaitCursor = 3
    Key_Escape = 0x01000000
    Horizontal, Vertical = 1, 2
    Unchecked, Checked = 0, 2
    UserRole = 0x0100
    WindowCloseButtonHint = 0x08000000
    AutoText = 2
    ElideRight = 1
    WindowShortcut, WidgetWithChildrenShortcut = 1, 3


_NAMED_COLORS = {name: (*rgb, 255) for name, rgb in {
    "black": (0, 0, 0), "white": (255, 255, 255), "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255),
    "yellow": (255, 255, 0), "cyan": (0, 255, 255), "magenta": (255, 0, 255), "gray": (128, 128, 128),
    "grey": (128, 128, 128), "darkgray": (169, 169, 169), "lightgray": (211, 211, 211), "orange": (255, 165, 0),
    "lime": (0, 255, 0), "darkred": (139, 0, 0), "darkgreen": (0, 100, 0), "darkblue": (0, 0, 139),
}.items()} | {"transparent": (0, 0, 0, 0)}


class QColor:
    """RGBA colour with Qt's invalid default; parses ``#rrggbb``, ``#aarrggbb`` and common SVG names."""

    HexRgb, HexArgb = 0, 1

    def __init__(self, *args):
        self._valid, self._rgba = False, (0, 0, 0, 255)
        if len(args) == 1 and isinstance(args[0], QColor):
            self._valid, self._rgba = args[0]._valid, args[0]._rgba
        elif len(args) == 1 and isinstance(args[0], str):
            self.setNamedColor(args[0])
        elif args:
            raise NotImplementedError("QColor from components is not stood in; use a name such as '#rrggbb'")

    def setNamedColor(self, text):
        text = text.strip().lower()
        digits = re.fullmatch(r"#((?:[0-9a-f]{2}){3,4})", text)
        if text in _NAMED_COLORS:
            self._valid, self._rgba = True, _NAMED_COLORS[text]
        elif digits:
            values = [int(digits[1][i:i + 2], 16) for i in range(0, len(digits[1]), 2)]  # rgb or argb
            self._valid, self._rgba = True, (*values, 255) if len(values) == 3 else (*values[1:], values[0])
        else:
            self._valid, self._rgba = False, (0, 0, 0, 255)

    def name(self, fmt=0):
        r, g, b, a = self._rgba
        return f"#{a:02x}{r:02x}{g:02x}{b:02x}" if fmt == QColor.HexArgb else f"#{r:02x}{g:02x}{b:02x}"

    def __eq__(self, other):
        return isinstance(other, QColor) and (self._valid, self._rgba) == (other._valid, other._rgba)


class QIcon:
    def __init__(self, path=""):
        self.path = str(path) if isinstance(path, (str, os.PathLike)) else ""


class QFont:
    """A font request: nothing is drawn, so it only keeps its family and style hint."""

    SansSerif, Serif, TypeWriter, Monospace = 0, 1, 2, 7

    def __init__(self, family="", *args):
        self._family, self._style_hint = str(family), QFont.SansSerif

    def setStyleHint(self, hint, *args):
        self._style_hint = hint


class QKeySequence:
    def __init__(self, key=0):
        self._key = key


class QShortcut(QObject):
    """A keyboard shortcut: nothing types keys in the harness, so ``activated`` never fires."""

    activated = Signal("")
    context = qproperty(Qt.WindowShortcut)

    def __init__(self, key=None, parent=None, *args):
        super().__init__(parent)
        self._key = key


class QDesktopServices:
    @staticmethod
    def openUrl(url):
        """Recorded in the session's ``opened_urls``; nothing is opened."""
        runtime.current().opened_urls.append(url if isinstance(url, str) else url.toString())
        return True


class QFile:
    """A file name for QUiLoader; it opens only for reading."""

    ReadOnly, WriteOnly = 0x1, 0x2

    def __init__(self, path=""):
        self._path = str(path)

    def fileName(self):
        return self._path

    def exists(self):
        return os.path.exists(self._path)

    def open(self, mode=ReadOnly):
        if mode & QFile.WriteOnly:
            raise NotImplementedError("QFile stand-in only reads (use Python's open for writing)")
        return os.path.isfile(self._path)


# ---------------------------------------------------------------------------------------------------------------
# Threads, timers, settings


class QThread(QObject):
    """Only identity: ``qt.QThread.currentThread() == slicer.app.thread()`` tells the main thread apart."""

    _by_ident: dict = {}

    @staticmethod
    def currentThread():
        return QThread._by_ident.setdefault(threading.get_ident(), QThread())

    @staticmethod
    def msleep(ms):
        time.sleep(ms / 1000.0)


class QTimer(QObject):
    """Single-shot timers on the session's virtual clock: they fire when the session processes events
    (``s.process_events()``, ``slicer.app.processEvents()`` for those already due, a modal dialog's loop).
    Starting a timer again before it fired restarts it, as in Qt; a repeating timer is not stood in."""

    timeout = Signal("")
    _single_shot = False
    _started = None

    def setSingleShot(self, value):
        self._single_shot = bool(value)

    def start(self, msec=0):
        if not self._single_shot:
            raise NotImplementedError("a repeating QTimer is not stood in; use a single-shot timer")
        self._started = started = object()
        runtime.current().schedule(msec, lambda: self._fire(started))

    def _fire(self, started):
        if started is self._started:
            self._started = None
            self._emit("timeout()")


def _single_shot(msec, slot):
    """What Slicer's slicerqt.py installs as ``qt.QTimer.singleShot``: a single-shot QTimer parented to the module
    manager, connected to the callable."""
    timer = QTimer(runtime.current().app.moduleManager())
    timer.setSingleShot(True)
    timer.connect("timeout()", slot)
    timer.start(msec)


# ``singleShot`` is both a property and this static method in PythonQt; Slicer overwrites it the same way.
QTimer.singleShot = staticmethod(_single_shot)


class QSettings(QObject):
    """In-memory settings shared by every QSettings of the session (``s.settings``; nothing is written to disk)."""

    def __init__(self, *args):
        super().__init__(None)
        self._store = runtime.current().settings

    def contains(self, key):
        return str(key) in self._store

    def value(self, key, default=None):
        return self._store.get(str(key), default)


# ---------------------------------------------------------------------------------------------------------------
# Layouts


class QSpacerItem:
    """A spacer: it takes room in a layout, nothing else."""

    def __init__(self, *args):
        pass


class QLayout(QObject):
    """Keeps its items (widgets, layouts, spacers) in order; the widgets in it, its nested layouts' too, become
    children of the widget the layout is set on (at once, or when the layout is set), as QLayout::addChildWidget
    does. Nothing is laid out, so a layout has no geometry and a form layout keeps no rows."""

    def __init__(self, parent=None):
        super().__init__(None)
        self._items: list = []
        self._widget = None
        if isinstance(parent, QWidget):
            parent.setLayout(self)

    def _owner(self):
        layout = self
        while layout is not None:
            if layout._widget is not None:
                return layout._widget
            layout = layout._parent if isinstance(layout._parent, QLayout) else None
        return None

    @staticmethod
    def _adopt(thing, owner):
        if isinstance(thing, QLayout):
            for item in thing._items:
                QLayout._adopt(item, owner)
        elif isinstance(thing, QWidget):
            thing.setParent(owner)

    def _attach(self, widget):
        self._widget = widget
        QObject.setParent(self, widget)
        self._adopt(self, widget)

    def addWidget(self, thing, *args):
        if isinstance(thing, QLayout):
            QObject.setParent(thing, self)
        elif thing._parent_layout not in (None, self):
            raise NotImplementedError("moving a widget from one layout to another is not stood in")
        else:
            thing._parent_layout = self
        if self._owner() is not None:
            self._adopt(thing, self._owner())
        self._items.append(thing)

    addLayout = addWidget

    def addItem(self, spacer):
        self._items.append(spacer)


class QVBoxLayout(QLayout):
    pass


class QHBoxLayout(QLayout):
    pass


class QFormLayout(QLayout):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Widgets with behaviour


class _TextWidget(QWidget):
    """A widget with a ``text`` property, made as ``Cls(text, parent)``, ``Cls(parent)``, ``Cls(text)`` or ``Cls()``."""

    text = qproperty("", str)

    def __init__(self, *args):
        parent, texts = _parent_and_texts(args)
        super().__init__(parent)
        if texts:
            self.text = texts[0]


class QLabel(_TextWidget):
    pass


class QAbstractButton(_TextWidget):
    """text/checkable/checked; ``click()`` toggles a checkable button and emits clicked(bool); setting ``checked``
    emits toggled(bool) only. A disabled button ignores ``click()``, as in Qt."""

    clicked = Signal("bool", "")
    toggled = Signal("bool")
    pressed = Signal("")
    released = Signal("")

    def _set_checked(self, value):
        value = bool(value)
        if self.checkable and value != self._checked:
            self._checked = value
            self._checked_changed()

    checkable = qproperty(False, bool)
    checked = qproperty(False, set=_set_checked)

    def _checked_changed(self):
        self._emit("toggled(bool)", self._checked)

    def click(self):
        if not self.enabled:
            return
        self._emit("pressed()")
        self._emit("released()")
        if self.checkable:
            self.checked = not self.checked
        self._emit("clicked(bool)", self.checked)
        self._emit("clicked()")


class QPushButton(QAbstractButton):
    pass


class QCheckBox(QAbstractButton):
    """Checkable; a change of ``checked`` emits stateChanged(int) (0 or 2) and toggled(bool)."""

    stateChanged = Signal("int")
    _checkable = True

    def _checked_changed(self):
        self._emit("stateChanged(int)", Qt.Checked if self._checked else Qt.Unchecked)
        super()._checked_changed()


class QComboBox(QWidget):
    """Items with text and data. Setting ``currentIndex`` emits currentIndexChanged(int) and
    currentTextChanged(QString) only on a change; adding the first item selects it, clearing selects -1."""

    currentIndexChanged = Signal("int", "QString")
    currentTextChanged = Signal("QString")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._texts: list[str] = []
        self._data: list = []

    def _set_index(self, index):
        index = int(index)
        if not -1 <= index < len(self._texts):
            index = -1
        if index == self._currentIndex:
            return
        self._currentIndex = index
        self._emit("currentIndexChanged(int)", index)
        self._emit("currentIndexChanged(QString)", self.currentText)
        self._emit("currentTextChanged(QString)", self.currentText)

    currentIndex = qproperty(-1, set=_set_index)
    currentText = property(lambda self: self.itemText(self.currentIndex))
    currentData = property(lambda self: self.itemData(self.currentIndex))  # a Q_PROPERTY: an attribute in PythonQt
    count = property(lambda self: len(self._texts))

    def addItem(self, *args):
        text, data = (*(args[1:] if isinstance(args[0], QIcon) else args), None)[:2]
        self.insertItem(len(self._texts), text, data)

    def insertItem(self, index, text, data=None):
        index = max(0, min(int(index), len(self._texts)))
        self._texts.insert(index, str(text))
        self._data.insert(index, data)
        if len(self._texts) == 1:
            self._set_index(0)
        elif index <= self.currentIndex:
            self._currentIndex += 1  # the current item moved; Qt does not signal this

    def clear(self):
        self._texts.clear()
        self._data.clear()
        self._set_index(-1)

    def itemText(self, index):
        return self._texts[index] if 0 <= index < len(self._texts) else ""

    def itemData(self, index, role=Qt.UserRole):
        return self._data[index] if 0 <= index < len(self._data) else None

    def findText(self, text, flags=0):
        return self._texts.index(str(text)) if str(text) in self._texts else -1


class _Bounded(QWidget):
    """``minimum``/``maximum`` of a range widget: values ``_coerce``d (to ``_type``, rounded to ``_decimals`` unless
    None), minimum <= maximum as Qt keeps them, and ``_range_changed()`` to bring the value(s) back inside."""

    _type, _decimals = int, None
    _minimum, _maximum = 0, 99

    def _coerce(self, value):
        value = self._type(value)
        return value if self._decimals is None else round(value, self._decimals)

    def setRange(self, minimum, maximum):
        self._minimum = self._coerce(minimum)
        self._maximum = max(self._minimum, self._coerce(maximum))
        self._range_changed()

    def _range_changed(self):
        pass

    minimum = qproperty(set=lambda self, value: self.setRange(value, max(self._maximum, self._coerce(value))))
    maximum = qproperty(set=lambda self, value: self.setRange(min(self._minimum, self._coerce(value)), value))


class _Decimals:
    """Floating values rounded to ``decimals`` (2 by default), as QDoubleSpinBox/ctkSliderWidget/ctkRangeWidget."""

    _decimals = 2

    def _set_decimals(self, value):
        self._decimals = int(value)
        self.setRange(self._minimum, self._maximum)

    decimals = qproperty(set=_set_decimals)


class _RangeWidget(_Bounded):
    """One value inside [minimum, maximum] with Qt's clamping; ``_signal`` is emitted when it changes."""

    _signal = "valueChanged(int)"
    _value, _singleStep = 0, 1

    def _set_value(self, value):
        value = min(max(self._coerce(value), self._minimum), self._maximum)
        if value != self._value:
            self._value = value
            self._emit(self._signal, value)

    def _range_changed(self):
        self._set_value(self._value)

    value = qproperty(set="_set_value")
    singleStep = qproperty()


class QAbstractSlider(_RangeWidget):
    valueChanged = Signal("int")
    orientation = qproperty(Qt.Horizontal)

    def __init__(self, *args):
        super().__init__(_parent_and_texts(args)[0])
        self.orientation = next((a for a in args if isinstance(a, int)), Qt.Horizontal)


class QSlider(QAbstractSlider):
    pass


class QScrollBar(QAbstractSlider):
    pass


class _DoubleRange(_RangeWidget):
    """A float value, 0..99 by default (ctkDoubleSlider; with ``_Decimals`` QDoubleSpinBox and ctkSliderWidget)."""

    valueChanged = Signal("double")
    _type, _signal = float, "valueChanged(double)"
    _minimum, _maximum, _value, _singleStep = 0.0, 99.0, 0.0, 1.0


class _Affixes:
    """A value shown with a prefix and a suffix (spin boxes, ctkSliderWidget)."""

    prefix = qproperty("", str)
    suffix = qproperty("", str)


class QSpinBox(_Affixes, _RangeWidget):
    """Emits valueChanged(int) and valueChanged(QString) (prefix, value, suffix) on a change."""

    valueChanged = Signal("int", "QString")

    def _set_value(self, value):
        before = self._value
        super()._set_value(value)
        if self._value != before:
            self._emit("valueChanged(QString)", f"{self.prefix}{self._value}{self.suffix}")


class QDoubleSpinBox(_Decimals, _Affixes, _DoubleRange):
    _maximum = 99.99


class QLineEdit(_TextWidget):
    """``text`` set programmatically emits textChanged(QString) (not textEdited), as in Qt."""

    textChanged = Signal("QString")
    text = qproperty("", str, "textChanged(QString)")


def _html_to_plain(text: str) -> str:
    text = re.sub(r"<br\s*/?>|</p\s*>", "\n", text, flags=re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip("\n")


class QTextEdit(QWidget):
    """Plain text and a minimal HTML-to-text conversion (``<br>``/``<p>`` become line breaks); textChanged()."""

    textChanged = Signal("")
    readOnly = qproperty(False, bool)

    def __init__(self, *args):
        parent, texts = _parent_and_texts(args)
        super().__init__(parent)
        self._plain = texts[0] if texts else ""

    def setPlainText(self, text):
        if str(text) != self._plain:
            self._plain = str(text)
            self._emit("textChanged()")

    def toPlainText(self):
        return self._plain

    def setHtml(self, text):
        self.setPlainText(_html_to_plain(str(text)))

    def append(self, text):
        self.setPlainText(f"{self._plain}\n{text}" if self._plain else text)

    def verticalScrollBar(self):
        return QScrollBar(self)


class QPlainTextEdit(QTextEdit):
    def appendPlainText(self, text):
        self.append(text)

    def setHtml(self, text):
        raise NotImplementedError("QPlainTextEdit has no setHtml")


class QProgressBar(_Bounded):
    """Its range only (packaging's indeterminate bar, ``setRange(0, 0)``)."""

    _maximum = 100


class QStatusBar(QWidget):
    messageChanged = Signal("QString")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.messages: list[str] = []

    def showMessage(self, message, timeout=0):
        self.messages.append(str(message))
        self._emit("messageChanged(QString)", str(message))


class QMainWindow(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._status_bar = QStatusBar(self)

    def statusBar(self):
        return self._status_bar


# ---------------------------------------------------------------------------------------------------------------
# Dialogs: never shown; the session records them and answers for the user


class QDialog(QWidget):
    """``exec_()`` runs a nested event loop, as Qt does: queued timers fire (advancing the virtual clock) until the
    dialog is closed. If nothing would close it, a real session would wait for the user: RuntimeError."""

    Rejected, Accepted = 0, 1
    accepted = Signal("")
    rejected = Signal("")
    finished = Signal("int")
    modal = qproperty(False, bool)
    _open, _result = False, Rejected

    def done(self, result):
        self._result = result
        self._open = False
        self._hidden_explicitly = True
        self._emit("finished(int)", result)
        self._emit("accepted()" if result == QDialog.Accepted else "rejected()")

    def reject(self):
        self.done(QDialog.Rejected)

    def close(self):
        if self._open:
            self.reject()
        self.hide()
        return True

    def show(self):
        self._open = True
        super().show()

    def exec_(self):
        rt = runtime.current()
        texts = "\n".join(child.text for child in self.findChildren(QLabel) if child.text)
        rt.record(runtime.Dialog("dialog", self.windowTitle, texts))
        self.show()
        rt.run_until(lambda: not self._open)
        if self._open:
            raise RuntimeError(f"modal dialog {self.windowTitle!r} would wait for the user: nothing closes it")
        return self._result

    exec = exec_


class QMessageBox(QDialog):
    """Message box; ``exec_()`` records it in the session's ``dialogs`` and returns the scripted answer
    (``s.answer_confirm``): OK/Yes/Retry by default, Cancel/No/Close when answered False. ``show()`` (a
    non-modal box) records it too."""

    Ok, Save, SaveAll, Open, Yes, YesToAll, No, NoToAll = 0x400, 0x800, 0x1000, 0x2000, 0x4000, 0x8000, 0x10000, 0x20000
    Abort, Retry, Ignore, Close, Cancel, Discard, Apply = 0x40000, 0x80000, 0x100000, 0x200000, 0x400000, 0x800000, 0x2000000
    NoIcon, Information, Warning, Critical, Question = 0, 1, 2, 3, 4

    _KIND = {NoIcon: "info", Information: "info", Warning: "warning", Critical: "error", Question: "question"}
    _AFFIRMATIVE = (Ok, Yes, Retry, Save, Open, Apply, YesToAll, SaveAll)
    _NEGATIVE = (Cancel, No, Close, Abort, Discard, Ignore, NoToAll)

    text = qproperty("", str)
    informativeText = qproperty("", str)
    detailedText = qproperty("", str)
    icon = qproperty(NoIcon)
    standardButtons = qproperty(Ok)
    defaultButton = qproperty()
    textFormat = qproperty(Qt.AutoText)

    def __init__(self, parent=None):
        super().__init__(parent)

    def _offered(self, buttons):
        return [b for b in buttons if self.standardButtons & b]

    def _answer(self):
        """The scripted answer as the button the user would press (the only one when there is no choice)."""
        offered = self._offered(self._AFFIRMATIVE + self._NEGATIVE)
        if len(offered) > 1:
            answered = self._AFFIRMATIVE if runtime.current().confirm_answer else self._NEGATIVE
            offered = self._offered(answered) or offered
        return offered[0] if offered else QMessageBox.Ok

    def _record(self, answer=None):
        # slicer.util.messageBox pads the title with spaces to widen the box: the record keeps the words
        runtime.current().record(runtime.Dialog(self._KIND.get(self.icon, "info"), self.windowTitle.strip(), self.text,
                                                self.detailedText, answer))

    def exec_(self):
        answer = self._answer()
        self._record(answer)
        return answer

    exec = exec_

    def show(self):
        self._record()
        super().show()


class QProgressDialog(QDialog):
    """labelText/minimum/maximum/value, ``wasCanceled``/``cancel()``; every instance is recorded in the session's
    ``progress_dialogs``. As in Qt: reaching the maximum with autoReset resets (value -1, canceled flag cleared)
    and with autoClose hides; setting a value on a shown modal dialog processes events."""

    canceled = Signal("")
    labelText = qproperty("", str)
    minimum = qproperty(0, int)
    maximum = qproperty(100, int)
    value = qproperty(-1, set="setValue")
    minimumDuration = qproperty(4000, int)
    autoClose = qproperty(True, bool)
    autoReset = qproperty(True, bool)
    wasCanceled = property(lambda self: self._canceled)  # a Q_PROPERTY: an attribute in PythonQt
    _canceled = False

    def __init__(self, *args):
        parent, texts = _parent_and_texts(args)
        super().__init__(parent)
        numbers = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
        self.labelText = texts[0] if texts else ""
        if len(numbers) >= 2:
            self.minimum, self.maximum = numbers[:2]
        runtime.current().progress_dialogs.append(self)

    def setValue(self, value):
        value = int(value)
        if value == self._value or not (self.minimum <= value <= self.maximum):
            return
        self._value = value
        if not self._open and self.minimumDuration == 0:
            self.show()
        if self._open and self.modal:
            runtime.current().app.processEvents()
        if value == self.maximum and self.autoReset:
            self.reset()

    def reset(self):
        if self.autoClose:
            self.hide()
            self._open = False
        self._value = self.minimum - 1
        self._canceled = False

    def cancel(self):
        """What the user's Cancel does (also callable from a test): flag, canceled(), hide."""
        self._canceled = True
        self._emit("canceled()")
        self.hide()
        self._open = False

    def show(self):
        self._open = True
        self._hidden_explicitly = False
        self._shown = True

    def close(self):
        self._open = False
        self.hide()
        return True

    def exec_(self):
        raise NotImplementedError("QProgressDialog.exec_ would wait for the user; use show()/setValue()")


class QFileDialog(QDialog):
    """``getExistingDirectory`` answered by the session's ``file_dialog_answer`` (a path; empty or None: the user
    cancelled) and recorded as a ``file`` dialog."""

    @staticmethod
    def getExistingDirectory(parent=None, caption="", directory="", options=0):
        rt = runtime.current()
        answer = str(rt.file_dialog_answer) if rt.file_dialog_answer else ""
        rt.record(runtime.Dialog("file", str(caption or ""), "", answer=answer))
        return answer


# ---------------------------------------------------------------------------------------------------------------
# .ui loading


class QUiLoader(QObject):
    """Builds the widget tree of a Qt Designer file from the stand-in classes (see uiloader.py)."""

    def load(self, qfile, parent=None):
        from .uiloader import load_ui

        return load_ui(qfile.fileName() if isinstance(qfile, QFile) else str(qfile), parent)


# Anything else named ``qt.Q...``: a distinct generic class per name
__getattr__ = module_getattr(__name__, "Q")
