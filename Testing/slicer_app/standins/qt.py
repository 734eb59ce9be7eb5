"""Stand-in for PythonQt's ``qt`` module: the Qt classes Slicer's Python layer and scripted modules use, with the
behaviour tests rely on (signals, properties, parent/children, layouts, combobox/slider/spin box semantics,
modal dialogs answered by the session, timers on a virtual clock). Nothing is drawn.

Conventions copied from PythonQt: Qt properties are Python attributes (``w.enabled = False``); a signal is connected
either by its signature (``w.connect("clicked(bool)", slot)``) or as an attribute (``w.clicked.connect(slot)``); a
slot receives only as many signal arguments as it accepts; an exception in a slot is printed, not propagated
(the session records it in ``slot_errors``).

Unknown ``qt.Q*`` names resolve to a distinct generic widget class per name (so code that merely names a class
works); everything with behaviour is an explicit class. A method that cannot behave like Qt raises
NotImplementedError instead of pretending.
"""

from __future__ import annotations

import html
import inspect
import os
import re
import threading

from . import runtime

# ---------------------------------------------------------------------------------------------------------------
# Signals


def _normalize(signature: str) -> str:
    """``"currentNodeChanged(vtkMRMLNode*)"`` and ``" clicked( bool ) "`` in Qt's normalized form."""
    signature = signature.strip()
    if signature[:1] in "12":  # SIGNAL()/SLOT() macro prefixes
        signature = signature[1:]
    name, _, args = signature.partition("(")
    args = args.rstrip(")")
    parts = []
    for arg in args.split(","):
        arg = arg.replace("const ", "").replace("&", "").strip()
        arg = re.sub(r"\s*\*", "*", arg)
        if arg:
            parts.append(arg)
    return f"{name.strip()}({','.join(parts)})"


def _max_positional(slot) -> int | None:
    """How many positional arguments ``slot`` accepts (None: any number), as PythonQt inspects it."""
    try:
        params = inspect.signature(slot).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for param in params:
        if param.kind == param.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
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
        if obj is None:
            return self
        return BoundSignal(obj, self.signatures()[0])


class BoundSignal:
    """``widget.clicked``: connect/disconnect/emit on the default overload."""

    def __init__(self, obj, signature):
        self._obj = obj
        self._signature = signature

    def connect(self, slot):
        return self._obj.connect(self._signature, slot)

    def disconnect(self, slot=None):
        return self._obj.disconnect(self._signature, slot)

    def emit(self, *args):
        self._obj._emit(self._signature, *args)

    def __call__(self, *args):  # PythonQt lets a signal be "called" to emit it
        self.emit(*args)


def _declared_signals(cls) -> dict[str, str]:
    """Normalized signature -> signal name, over the class hierarchy."""
    cached = cls.__dict__.get("_signal_table")
    if cached is not None:
        return cached
    table = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if isinstance(value, Signal):
                for signature in value.signatures():
                    table[signature] = value.name
    cls._signal_table = table
    return table


def _named_slot(receiver, slot_signature: str):
    name = _normalize(slot_signature).partition("(")[0]
    method = getattr(receiver, name, None)
    if method is None:
        raise AttributeError(f"{type(receiver).__name__} has no slot {slot_signature!r}")
    return method


# ---------------------------------------------------------------------------------------------------------------
# QObject / QWidget


def _qt_properties(cls) -> set[str]:
    cached = cls.__dict__.get("_property_names")
    if cached is not None:
        return cached
    names = {name for klass in cls.__mro__ for name, value in vars(klass).items()
             if isinstance(value, property) and not name.startswith("_")}
    cls._property_names = names
    return names


_STANDIN_MODULES = {__name__}


def register_standin_module(name: str) -> None:
    """ctk.py and widgets.py register themselves so className()/inherits() see their classes as Qt classes."""
    _STANDIN_MODULES.add(name)


class QObject:
    """objectName (also ``name``), parent/children, dynamic properties, signals."""

    destroyed = Signal("QObject*", "")
    objectNameChanged = Signal("QString")
    _accepts_any_signal = False

    def __init__(self, parent=None, *args, **kwargs):
        self._object_name = ""
        self._parent = None
        self._children = []
        self._dynamic = {}
        self._connections = {}
        self._signals_blocked = False
        if isinstance(parent, QObject):
            self.setParent(parent)

    # -- identity --------------------------------------------------------------------------------------------------
    @property
    def objectName(self):
        return self._object_name

    @objectName.setter
    def objectName(self, value):
        value = str(value)
        if value != self._object_name:
            self._object_name = value
            self._emit("objectNameChanged(QString)", value)

    name = objectName

    def setObjectName(self, value):
        self.objectName = value

    def className(self):
        for klass in type(self).__mro__:
            if klass.__module__ in _STANDIN_MODULES:
                return klass.__name__
        return type(self).__name__

    def inherits(self, class_name):
        return any(klass.__name__ == class_name for klass in type(self).__mro__ if klass.__module__ in _STANDIN_MODULES)

    def isWidgetType(self):
        return False

    def __repr__(self):
        return f"{self.className()} ({self._object_name or 'unnamed'})"

    # -- tree ------------------------------------------------------------------------------------------------------
    def parent(self):
        return self._parent

    def setParent(self, parent):
        if self._parent is parent:
            return
        if self._parent is not None and self in self._parent._children:
            self._parent._children.remove(self)
        self._parent = parent
        if parent is not None:
            parent._children.append(self)

    def children(self):
        return list(self._children)

    def findChildren(self, cls=None, name=""):
        found = []
        for child in self._children:
            if _matches(child, cls) and (not name or child.objectName == name):
                found.append(child)
            found.extend(child.findChildren(cls, name))
        return found

    def findChild(self, cls=None, name=""):
        children = self.findChildren(cls, name)
        return children[0] if children else None

    def deleteLater(self):
        """Qt deletes the object when control returns to the event loop; Python's references keep it here."""

    # -- properties ------------------------------------------------------------------------------------------------
    def property(self, name):
        if name in self._dynamic:
            return self._dynamic[name]
        if name in _qt_properties(type(self)):
            return getattr(self, name)
        return None

    def setProperty(self, name, value):
        if name in _qt_properties(type(self)):
            setattr(self, name, value)
            return True
        self._dynamic[name] = value
        return False  # Qt returns false for dynamic properties

    def dynamicPropertyNames(self):
        return list(self._dynamic)

    # -- signals ---------------------------------------------------------------------------------------------------
    def _resolve_signal(self, signal: str) -> str:
        signature = _normalize(signal)
        table = _declared_signals(type(self))
        if signature in table or self._accepts_any_signal:
            return signature
        name = signature.partition("(")[0]
        known = sorted(s for s in table if s.startswith(name + "("))
        hint = f" (it has {', '.join(known)})" if known else ""
        raise ValueError(f"{self.className()} has no signal {signature}{hint}; real Qt would print a warning and "
                         "leave the slot unconnected")

    def connect(self, signal, slot_or_receiver, slot_signature=None, *_connection_type):
        signature = self._resolve_signal(signal)
        slot = _named_slot(slot_or_receiver, slot_signature) if isinstance(slot_signature, str) else slot_or_receiver
        if not callable(slot):
            raise TypeError(f"cannot connect {signature} to {slot!r}: not callable")
        self._connections.setdefault(signature, []).append(slot)
        return True

    def disconnect(self, signal=None, slot_or_receiver=None, slot_signature=None):
        if signal is None:
            self._connections.clear()
            return True
        signature = self._resolve_signal(signal)
        slots = self._connections.get(signature, [])
        if slot_or_receiver is None:
            had = bool(slots)
            slots.clear()
            return had
        slot = _named_slot(slot_or_receiver, slot_signature) if isinstance(slot_signature, str) else slot_or_receiver
        for index, connected in enumerate(slots):
            if connected == slot:
                del slots[index]
                return True
        return False

    def blockSignals(self, block):
        previous = self._signals_blocked
        self._signals_blocked = bool(block)
        return previous

    def signalsBlocked(self):
        return self._signals_blocked

    def receivers(self, signal):
        return len(self._connections.get(_normalize(signal), []))

    def _emit(self, signature, *args):
        if self._signals_blocked:
            return
        rt = runtime.current()
        for slot in list(self._connections.get(signature, [])):
            count = _max_positional(slot)
            rt.call_slot(slot, args if count is None else args[:count], f"slot of {self.className()}.{signature}")


def _matches(obj, cls) -> bool:
    if cls is None:
        return True
    if isinstance(cls, str):
        return obj.inherits(cls)
    return isinstance(obj, cls)


class QWidget(QObject):
    """Enabled/visible/toolTip/layout. ``visible`` is Qt's isVisible(): shown itself and all its ancestors, the
    top-level one shown explicitly (the session shows the module panel on ``enter``)."""

    windowTitleChanged = Signal("QString")
    customContextMenuRequested = Signal("QPoint")

    def __init__(self, parent=None, *args, **kwargs):
        super().__init__(parent if isinstance(parent, QObject) else None)
        self._enabled = True
        self._hidden_explicitly = False
        self._shown = False
        self._layout = None
        self._tool_tip = ""
        self._window_title = ""
        self._style_sheet = ""
        self._parent_layout = None

    def isWidgetType(self):
        return True

    # -- enabled ---------------------------------------------------------------------------------------------------
    @property
    def enabled(self):
        return self._enabled and (self._parent is None or not isinstance(self._parent, QWidget) or self._parent.enabled)

    @enabled.setter
    def enabled(self, value):
        self._enabled = bool(value)

    def setEnabled(self, value):
        self.enabled = value

    def setDisabled(self, value):
        self.enabled = not value

    def isEnabled(self):
        return self.enabled

    def isEnabledTo(self, ancestor):
        return self._enabled

    # -- visibility ------------------------------------------------------------------------------------------------
    def _child_visible(self, child) -> bool:
        """Containers that hide their contents (e.g. a collapsed ctkCollapsibleButton) override this."""
        return True

    @property
    def visible(self):
        if self._hidden_explicitly:
            return False
        parent = self._parent
        if isinstance(parent, QWidget):
            return parent.visible and parent._child_visible(self)
        return self._shown

    @visible.setter
    def visible(self, value):
        self._hidden_explicitly = not value
        if value and not isinstance(self._parent, QWidget):
            self._shown = True

    def setVisible(self, value):
        self.visible = value

    def isVisible(self):
        return self.visible

    def isHidden(self):
        if isinstance(self._parent, QWidget):
            return self._hidden_explicitly
        return self._hidden_explicitly or not self._shown

    def show(self):
        self.visible = True

    def hide(self):
        self.visible = False

    def close(self):
        self.hide()
        return True

    def raise_(self):
        pass

    def activateWindow(self):
        pass

    # -- text-ish properties ---------------------------------------------------------------------------------------
    @property
    def toolTip(self):
        return self._tool_tip

    @toolTip.setter
    def toolTip(self, value):
        self._tool_tip = str(value)

    def setToolTip(self, value):
        self.toolTip = value

    @property
    def windowTitle(self):
        return self._window_title

    @windowTitle.setter
    def windowTitle(self, value):
        value = str(value)
        if value != self._window_title:
            self._window_title = value
            self._emit("windowTitleChanged(QString)", value)

    def setWindowTitle(self, value):
        self.windowTitle = value

    @property
    def styleSheet(self):
        return self._style_sheet

    @styleSheet.setter
    def styleSheet(self, value):
        self._style_sheet = str(value)

    def setStyleSheet(self, value):
        self.styleSheet = value

    # -- layout ----------------------------------------------------------------------------------------------------
    def layout(self):
        return self._layout

    def setLayout(self, layout):
        if self._layout is not None:
            print(f"QWidget::setLayout: Attempting to set QLayout on {self.className()} which already has a layout")
            return
        self._layout = layout
        layout._attach(self)

    def parentWidget(self):
        return self._parent if isinstance(self._parent, QWidget) else None

    def window(self):
        widget = self
        while isinstance(widget._parent, QWidget):
            widget = widget._parent
        return widget

    # -- geometry and cosmetics: nothing is drawn, so these only keep what they were given -------------------------
    def setSizePolicy(self, *args):
        self._dynamic.setdefault("_sizePolicy", args)

    def sizePolicy(self):
        return QSizePolicy()

    def _keep(self, *args):
        pass

    setMinimumWidth = setMinimumHeight = setMaximumWidth = setMaximumHeight = _keep
    setFixedWidth = setFixedHeight = setFixedSize = setMinimumSize = setMaximumSize = resize = _keep
    setContentsMargins = setFocusPolicy = setFocus = setCursor = unsetCursor = update = repaint = _keep
    setAttribute = setWindowFlags = setWindowModality = setWindowIcon = setFont = setContextMenuPolicy = _keep
    setAutoFillBackground = setPalette = adjustSize = setAcceptDrops = setWhatsThis = setStatusTip = _keep

    def windowFlags(self):
        return 0


class _GenericWidget(QWidget):
    """Fallback for Qt/CTK/Slicer classes without an explicit stand-in: it accepts any signal connection and any
    property, and has no behaviour (calling an unknown method raises AttributeError)."""

    _accepts_any_signal = True

    def __init__(self, *args, **kwargs):
        super().__init__(next((a for a in args if isinstance(a, QObject)), None))


def generic_class(name: str, module: str):
    return type(name, (_GenericWidget,), {"__module__": module, "__doc__": f"generic stand-in for {name}"})


# ---------------------------------------------------------------------------------------------------------------
# Namespace constants


class Qt:
    """The ``Qt::`` namespace values Slicer code names."""

    # cursors
    ArrowCursor, UpArrowCursor, CrossCursor, WaitCursor, IBeamCursor = 0, 1, 2, 3, 4
    PointingHandCursor, ForbiddenCursor, BusyCursor = 13, 14, 16
    # keyboard modifiers and keys
    NoModifier, ShiftModifier, ControlModifier, AltModifier, MetaModifier = 0, 0x02000000, 0x04000000, 0x08000000, 0x10000000
    Key_Escape, Key_Tab, Key_Backspace, Key_Return, Key_Enter, Key_Delete = 0x01000000, 0x01000001, 0x01000003, 0x01000004, 0x01000005, 0x01000007
    # orientation and alignment
    Horizontal, Vertical = 1, 2
    AlignLeft, AlignRight, AlignHCenter, AlignJustify = 0x1, 0x2, 0x4, 0x8
    AlignTop, AlignBottom, AlignVCenter, AlignCenter = 0x20, 0x40, 0x80, 0x84
    # check state and item roles
    Unchecked, PartiallyChecked, Checked = 0, 1, 2
    DisplayRole, DecorationRole, EditRole, ToolTipRole, UserRole = 0, 1, 2, 3, 0x0100
    ItemIsSelectable, ItemIsEditable, ItemIsUserCheckable, ItemIsEnabled = 1, 2, 16, 32
    # windows
    NonModal, WindowModal, ApplicationModal = 0, 1, 2
    Widget, Window, Dialog, Tool = 0, 1, 3, 11
    WindowCloseButtonHint, WindowStaysOnTopHint = 0x08000000, 0x00040000
    WA_DeleteOnClose = 55
    # text and tool buttons
    PlainText, RichText, AutoText = 0, 1, 2
    TextSelectableByMouse, TextBrowserInteraction = 1, 13
    ToolButtonIconOnly, ToolButtonTextOnly, ToolButtonTextBesideIcon, ToolButtonTextUnderIcon = 0, 1, 2, 3
    ElideLeft, ElideRight, ElideMiddle, ElideNone = 0, 1, 2, 3
    NoContextMenu, DefaultContextMenu, CustomContextMenu = 0, 1, 3
    ScrollBarAsNeeded, ScrollBarAlwaysOff, ScrollBarAlwaysOn = 0, 1, 2
    WidgetShortcut, WidgetWithChildrenShortcut, WindowShortcut, ApplicationShortcut = 0, 3, 1, 2
    NoFocus, TabFocus, ClickFocus, StrongFocus = 0, 1, 2, 11
    LeftButton, RightButton, MiddleButton = 1, 2, 4
    KeepAspectRatio, SmoothTransformation = 1, 1


class QSizePolicy:
    Fixed, Minimum, Maximum, Preferred, MinimumExpanding, Expanding, Ignored = 0, 1, 4, 5, 3, 7, 13

    def __init__(self, horizontal=5, vertical=5, *args):
        self.horizontal, self.vertical = horizontal, vertical

    def setHorizontalPolicy(self, policy):
        self.horizontal = policy

    def setVerticalPolicy(self, policy):
        self.vertical = policy

    def horizontalPolicy(self):
        return self.horizontal

    def verticalPolicy(self):
        return self.vertical


class QSize:
    def __init__(self, width=-1, height=-1):
        self._w, self._h = width, height

    def width(self):
        return self._w

    def height(self):
        return self._h

    def __eq__(self, other):
        return isinstance(other, QSize) and (self._w, self._h) == (other._w, other._h)


class QEventLoop:
    AllEvents, ExcludeUserInputEvents, ExcludeSocketNotifiers, WaitForMoreEvents = 0, 1, 2, 4


# ---------------------------------------------------------------------------------------------------------------
# Values: colour, icon, pixmap, url, files


_NAMED_COLORS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255),
    "yellow": (255, 255, 0), "cyan": (0, 255, 255), "magenta": (255, 0, 255), "gray": (128, 128, 128),
    "grey": (128, 128, 128), "darkgray": (169, 169, 169), "lightgray": (211, 211, 211), "orange": (255, 165, 0),
    "lime": (0, 255, 0), "darkred": (139, 0, 0), "darkgreen": (0, 100, 0), "darkblue": (0, 0, 139),
}


class QColor:
    """RGBA colour with Qt's invalid default; parses ``#rrggbb``, ``#aarrggbb`` and common SVG names."""

    HexRgb, HexArgb = 0, 1

    def __init__(self, *args):
        self._valid = False
        self._rgba = (0, 0, 0, 255)
        if len(args) == 1 and isinstance(args[0], QColor):
            self._valid, self._rgba = args[0]._valid, args[0]._rgba
        elif len(args) == 1 and isinstance(args[0], str):
            self.setNamedColor(args[0])
        elif len(args) >= 3:
            self.setRgb(*args)

    def setNamedColor(self, text):
        text = text.strip().lower()
        if text in _NAMED_COLORS:
            self._rgba, self._valid = (*_NAMED_COLORS[text], 255), True
        elif text == "transparent":
            self._rgba, self._valid = (0, 0, 0, 0), True
        elif re.fullmatch(r"#[0-9a-f]{6}", text):
            self._rgba, self._valid = (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16), 255), True
        elif re.fullmatch(r"#[0-9a-f]{8}", text):
            a, r, g, b = (int(text[i:i + 2], 16) for i in (1, 3, 5, 7))
            self._rgba, self._valid = (r, g, b, a), True
        else:
            self._rgba, self._valid = (0, 0, 0, 255), False

    def setRgb(self, r, g, b, a=255):
        self._rgba, self._valid = (int(r), int(g), int(b), int(a)), True

    def setRgbF(self, r, g, b, a=1.0):
        self.setRgb(*(round(v * 255) for v in (r, g, b, a)))

    def isValid(self):
        return self._valid

    def red(self):
        return self._rgba[0]

    def green(self):
        return self._rgba[1]

    def blue(self):
        return self._rgba[2]

    def alpha(self):
        return self._rgba[3]

    def redF(self):
        return self._rgba[0] / 255.0

    def greenF(self):
        return self._rgba[1] / 255.0

    def blueF(self):
        return self._rgba[2] / 255.0

    def alphaF(self):
        return self._rgba[3] / 255.0

    def getRgb(self):
        return self._rgba

    def name(self, fmt=0):
        r, g, b, a = self._rgba
        return f"#{a:02x}{r:02x}{g:02x}{b:02x}" if fmt == QColor.HexArgb else f"#{r:02x}{g:02x}{b:02x}"

    def __eq__(self, other):
        return isinstance(other, QColor) and (self._valid, self._rgba) == (other._valid, other._rgba)

    def __repr__(self):
        return f"QColor({self.name(1) if self._valid else 'invalid'})"


class QIcon:
    def __init__(self, path=""):
        self.path = str(path) if isinstance(path, (str, os.PathLike)) else ""

    def isNull(self):
        return not self.path


class QPixmap:
    def __init__(self, path="", *args):
        self.path = str(path) if isinstance(path, (str, os.PathLike)) else ""

    def isNull(self):
        return not (self.path and os.path.isfile(self.path))

    def scaled(self, *args):
        return self


class QUrl:
    TolerantMode, StrictMode = 0, 1

    def __init__(self, url="", mode=0):
        self._url = str(url)

    def toString(self):
        return self._url

    def toLocalFile(self):
        return self._url[len("file://"):] if self._url.startswith("file://") else ""

    @staticmethod
    def fromLocalFile(path):
        return QUrl("file://" + str(path))

    def __repr__(self):
        return f"QUrl({self._url!r})"


class QFont:
    SansSerif, Serif, TypeWriter, Monospace = 0, 1, 2, 7
    Normal, Bold = 50, 75

    def __init__(self, family="", point_size=-1, *args):
        self._family, self._point_size, self._bold, self._style_hint = str(family), point_size, False, 0

    def family(self):
        return self._family

    def setFamily(self, family):
        self._family = str(family)

    def pointSize(self):
        return self._point_size

    def setPointSize(self, size):
        self._point_size = size

    def bold(self):
        return self._bold

    def setBold(self, bold):
        self._bold = bool(bold)

    def setStyleHint(self, hint, *args):
        self._style_hint = hint


class QKeySequence:
    def __init__(self, key=0):
        self._key = key

    def toString(self):
        return str(self._key)


class QShortcut(QObject):
    """A keyboard shortcut: nothing types keys in the harness, so it never fires by itself."""

    activated = Signal("")
    activatedAmbiguously = Signal("")

    def __init__(self, key=None, parent=None, *args):
        super().__init__(parent if isinstance(parent, QObject) else None)
        self._key = key
        self._context = Qt.WindowShortcut
        self._enabled = True

    def setKey(self, key):
        self._key = key

    def key(self):
        return self._key

    def setContext(self, context):
        self._context = context

    def context(self):
        return self._context

    def setEnabled(self, enabled):
        self._enabled = bool(enabled)


class QDesktopServices:
    @staticmethod
    def openUrl(url):
        """Recorded in the session's ``opened_urls``; nothing is opened."""
        runtime.current().opened_urls.append(url.toString() if isinstance(url, QUrl) else str(url))
        return True


class QFile:
    ReadOnly, WriteOnly, ReadWrite, Text = 0x1, 0x2, 0x3, 0x10

    def __init__(self, path=""):
        self._path = str(path)
        self._open = False

    def fileName(self):
        return self._path

    def exists(self):
        return os.path.exists(self._path)

    def open(self, mode=0x1):
        if mode & QFile.WriteOnly:
            raise NotImplementedError("QFile stand-in only reads (use Python's open for writing)")
        self._open = os.path.isfile(self._path)
        return self._open

    def isOpen(self):
        return self._open

    def readAll(self):
        with open(self._path, "rb") as handle:
            return handle.read()

    def close(self):
        self._open = False

    def remove(self):
        try:
            os.remove(self._path)
            return True
        except OSError:
            return False


class QDir:
    def __init__(self, path="."):
        self._path = str(path) if not isinstance(path, QDir) else path._path

    def path(self):
        return self._path

    def absolutePath(self):
        return os.path.abspath(self._path)

    def exists(self, name=None):
        return os.path.exists(os.path.join(self._path, name) if name else self._path)

    def mkpath(self, path):
        os.makedirs(os.path.join(self._path, path), exist_ok=True)
        return True

    def filePath(self, name):
        return os.path.join(self._path, name)


# ---------------------------------------------------------------------------------------------------------------
# Application-level helpers: cursor, events, threads, timers, settings


class QCursor:
    def __init__(self, shape=0):
        self._shape = shape

    def shape(self):
        return self._shape


class QApplication(QObject):
    """Static helpers; they act on the session's ``slicer.app`` (the only application there is)."""

    @staticmethod
    def instance():
        return runtime.current().app

    @staticmethod
    def setOverrideCursor(cursor):
        runtime.current().app.setOverrideCursor(cursor)

    @staticmethod
    def restoreOverrideCursor():
        runtime.current().app.restoreOverrideCursor()

    @staticmethod
    def overrideCursor():
        return runtime.current().app.overrideCursor()

    @staticmethod
    def processEvents(*flags):
        runtime.current().app.processEvents(*flags)

    @staticmethod
    def keyboardModifiers():
        return runtime.current().app.keyboardModifiers()

    @staticmethod
    def clipboard():
        return runtime.current().app.clipboard()


QCoreApplication = QGuiApplication = QApplication


class QThread(QObject):
    """Only identity: ``qt.QThread.currentThread() == slicer.app.thread()`` tells the main thread apart."""

    _by_ident: dict = {}

    @staticmethod
    def currentThread():
        ident = threading.get_ident()
        return QThread._by_ident.setdefault(ident, QThread())

    @staticmethod
    def msleep(ms):
        import time
        time.sleep(ms / 1000.0)


class QTimer(QObject):
    """Timers on the session's virtual clock: they fire when the session processes events
    (``s.process_events()``, ``slicer.app.processEvents()`` for those already due, a modal dialog's loop)."""

    timeout = Signal("")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._interval = 0
        self._single_shot = False
        self._active = False
        self._generation = 0

    @property
    def interval(self):
        return self._interval

    @interval.setter
    def interval(self, value):
        self._interval = int(value)

    def setInterval(self, value):
        self.interval = value

    @property
    def singleShot(self):
        return self._single_shot

    @singleShot.setter
    def singleShot(self, value):
        self._single_shot = bool(value)

    def setSingleShot(self, value):
        self._single_shot = bool(value)

    def isSingleShot(self):
        return self._single_shot

    def isActive(self):
        return self._active

    def start(self, msec=None):
        if msec is not None:
            self._interval = int(msec)
        self._generation += 1
        self._active = True
        self._queue(self._generation)

    def _queue(self, generation):
        runtime.current().schedule(self._interval, lambda: self._fire(generation))

    def _fire(self, generation):
        if not self._active or generation != self._generation:
            return
        if self._single_shot:
            self._active = False
        else:
            self._queue(generation)
        self._emit("timeout()")

    def stop(self):
        self._active = False
        self._generation += 1


def _single_shot(msec, receiver_or_callable, member=None):
    """What Slicer's slicerqt.py installs as ``qt.QTimer.singleShot``: a single-shot QTimer parented to the module
    manager, connected to the callable (or to ``receiver``'s ``member`` slot)."""
    app = runtime.current().app
    timer = QTimer(app.moduleManager() if app is not None else None)
    timer.setSingleShot(True)
    if callable(receiver_or_callable):
        timer.connect("timeout()", receiver_or_callable)
    else:
        timer.connect("timeout()", receiver_or_callable, member)
    timer.start(msec)


# ``singleShot`` is both the property above and this static method in PythonQt; Slicer overwrites it the same way.
QTimer.singleShot = staticmethod(_single_shot)


class QSettings(QObject):
    """In-memory settings shared by every QSettings of the session (nothing is written to disk)."""

    IniFormat, NativeFormat = 1, 0
    UserScope, SystemScope = 0, 1

    def __init__(self, *args):
        super().__init__(None)
        self._store = runtime.current().settings
        self._groups = []

    def _key(self, key):
        return "/".join([*self._groups, str(key)])

    def value(self, key, default=None):
        return self._store.get(self._key(key), default)

    def setValue(self, key, value):
        self._store[self._key(key)] = value

    def contains(self, key):
        return self._key(key) in self._store

    def remove(self, key):
        prefix = self._key(key)
        for stored in [k for k in self._store if k == prefix or k.startswith(prefix + "/")]:
            del self._store[stored]

    def allKeys(self):
        prefix = "/".join(self._groups)
        keys = [k for k in self._store if not prefix or k.startswith(prefix + "/")]
        return [k[len(prefix) + 1:] if prefix else k for k in keys]

    def childKeys(self):
        return [k for k in self.allKeys() if "/" not in k]

    def beginGroup(self, group):
        self._groups.append(str(group))

    def endGroup(self):
        self._groups.pop()

    def sync(self):
        pass

    def fileName(self):
        return ""


# ---------------------------------------------------------------------------------------------------------------
# Layouts


class QSpacerItem:
    def __init__(self, width=0, height=0, horizontal=QSizePolicy.Minimum, vertical=QSizePolicy.Minimum):
        self.size = (width, height)


class QLayoutItem:
    def __init__(self, widget=None, layout=None, spacer=None):
        self._widget, self._layout, self._spacer = widget, layout, spacer

    def widget(self):
        return self._widget

    def layout(self):
        return self._layout

    def spacerItem(self):
        return self._spacer


class QLayout(QObject):
    """Keeps its items in order; widgets added to it become children of the widget the layout is set on
    (at once, or when the layout is set), as QLayout::addChildWidget does."""

    def __init__(self, parent=None):
        super().__init__(None)
        self._items: list[QLayoutItem] = []
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

    def _attach(self, widget):
        self._widget = widget
        QObject.setParent(self, widget)
        self._adopt_all(widget)

    def _adopt_all(self, owner):
        for item in self._items:
            if item._widget is not None:
                item._widget.setParent(owner)
            elif item._layout is not None:
                item._layout._adopt_all(owner)

    def _adopt(self, widget):
        if widget._parent_layout is not None and widget._parent_layout is not self:
            widget._parent_layout.removeWidget(widget)
        widget._parent_layout = self
        owner = self._owner()
        if owner is not None:
            widget.setParent(owner)

    def _insert(self, index, item):
        if index is None or index < 0 or index > len(self._items):
            self._items.append(item)
        else:
            self._items.insert(index, item)

    def addWidget(self, widget, *args):
        self._adopt(widget)
        self._insert(None, QLayoutItem(widget=widget))

    def addLayout(self, layout, *args):
        QObject.setParent(layout, self)
        owner = self._owner()
        if owner is not None:
            layout._adopt_all(owner)
        self._insert(None, QLayoutItem(layout=layout))

    def addItem(self, item):
        if isinstance(item, QLayoutItem):
            self._insert(None, item)
        else:
            self._insert(None, QLayoutItem(spacer=item))

    def addSpacerItem(self, spacer):
        self._insert(None, QLayoutItem(spacer=spacer))

    def count(self):
        return len(self._items)

    def itemAt(self, index):
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index):
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def removeItem(self, item):
        if item in self._items:
            self._items.remove(item)

    def removeWidget(self, widget):
        for item in list(self._items):
            if item._widget is widget:
                self._items.remove(item)
                widget._parent_layout = None

    def indexOf(self, widget):
        for index, item in enumerate(self._items):
            if item._widget is widget:
                return index
        return -1

    def parentWidget(self):
        return self._owner()

    def _keep(self, *args):
        pass

    setSpacing = setMargin = setContentsMargins = setAlignment = setSizeConstraint = setStretch = _keep


class QBoxLayout(QLayout):
    LeftToRight, RightToLeft, TopToBottom, BottomToTop = 0, 1, 2, 3

    def addStretch(self, stretch=0):
        self._insert(None, QLayoutItem(spacer=QSpacerItem()))

    def addSpacing(self, size):
        self._insert(None, QLayoutItem(spacer=QSpacerItem(size, size)))

    def insertWidget(self, index, widget, *args):
        self._adopt(widget)
        self._insert(index, QLayoutItem(widget=widget))

    def insertLayout(self, index, layout, *args):
        QObject.setParent(layout, self)
        owner = self._owner()
        if owner is not None:
            layout._adopt_all(owner)
        self._insert(index, QLayoutItem(layout=layout))

    def insertStretch(self, index, stretch=0):
        self._insert(index, QLayoutItem(spacer=QSpacerItem()))

    def insertSpacing(self, index, size):
        self._insert(index, QLayoutItem(spacer=QSpacerItem(size, size)))


class QVBoxLayout(QBoxLayout):
    pass


class QHBoxLayout(QBoxLayout):
    pass


class QFormLayout(QLayout):
    LabelRole, FieldRole, SpanningRole = 0, 1, 2

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[list] = []  # [label item, field item]; a spanning item is stored as the field

    def _item(self, thing):
        if isinstance(thing, str):
            thing = QLabel(thing)
        if isinstance(thing, QLayout):
            QObject.setParent(thing, self)
            owner = self._owner()
            if owner is not None:
                thing._adopt_all(owner)
            return QLayoutItem(layout=thing)
        self._adopt(thing)
        return QLayoutItem(widget=thing)

    def addRow(self, first, second=None):
        if second is None:
            row = [None, self._item(first)]
        else:
            row = [self._item(first), self._item(second)]
        self._rows.append(row)
        self._items.extend(item for item in row if item is not None)

    def insertRow(self, index, first, second=None):
        self.addRow(first, second)
        self._rows.insert(index, self._rows.pop())

    def setWidget(self, row, role, widget):
        while len(self._rows) <= row:
            self._rows.append([None, None])
        item = self._item(widget)
        self._rows[row][0 if role == QFormLayout.LabelRole else 1] = item
        self._items.append(item)

    setLayout = setWidget

    def rowCount(self):
        return len(self._rows)

    def itemAt(self, *args):
        if len(args) == 2:
            row, role = args
            return self._rows[row][0 if role == QFormLayout.LabelRole else 1] if row < len(self._rows) else None
        return super().itemAt(*args)

    def labelForField(self, field):
        for label, item in self._rows:
            if item is not None and (item._widget is field or item._layout is field):
                return label._widget if label is not None else None
        return None

    def setRowVisible(self, row, visible):
        for item in self._rows[row]:
            if item is not None and item._widget is not None:
                item._widget.setVisible(visible)

    def _keep(self, *args):
        pass

    setLabelAlignment = setFieldGrowthPolicy = setRowWrapPolicy = setHorizontalSpacing = setVerticalSpacing = _keep


class QGridLayout(QLayout):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._positions = {}

    def addWidget(self, widget, row=None, column=None, *args):
        super().addWidget(widget)
        if row is None:
            row, column = len(self._positions), 0
        self._positions[(row, column)] = self._items[-1]

    def addLayout(self, layout, row=None, column=None, *args):
        super().addLayout(layout)
        if row is None:
            row, column = len(self._positions), 0
        self._positions[(row, column)] = self._items[-1]

    def itemAtPosition(self, row, column):
        return self._positions.get((row, column))

    def rowCount(self):
        return 1 + max((r for r, _ in self._positions), default=0)

    def columnCount(self):
        return 1 + max((c for _, c in self._positions), default=0)

    def _keep(self, *args):
        pass

    setColumnStretch = setRowStretch = setHorizontalSpacing = setVerticalSpacing = setColumnMinimumWidth = _keep


# ---------------------------------------------------------------------------------------------------------------
# Widgets with behaviour


class QFrame(QWidget):
    NoFrame, Box, Panel, StyledPanel, HLine, VLine = 0, 1, 2, 6, 4, 5
    Plain, Raised, Sunken = 0x10, 0x20, 0x30

    def setFrameShape(self, *args):
        pass

    setFrameShadow = setLineWidth = setFrameStyle = setFrameShape


class QLabel(QFrame):
    linkActivated = Signal("QString")

    def __init__(self, text="", parent=None, *args):
        if isinstance(text, QObject):
            text, parent = "", text
        super().__init__(parent)
        self._text = str(text)
        self._word_wrap = False
        self._pixmap = None

    @property
    def text(self):
        return self._text

    @text.setter
    def text(self, value):
        self._text = str(value)

    def setText(self, value):
        self.text = value

    def clear(self):
        self._text = ""

    @property
    def wordWrap(self):
        return self._word_wrap

    @wordWrap.setter
    def wordWrap(self, value):
        self._word_wrap = bool(value)

    def setWordWrap(self, value):
        self.wordWrap = value

    def setPixmap(self, pixmap):
        self._pixmap = pixmap

    def pixmap(self):
        return self._pixmap

    def _keep(self, *args):
        pass

    setOpenExternalLinks = setTextFormat = setTextInteractionFlags = setAlignment = setMargin = setIndent = _keep
    setScaledContents = setBuddy = _keep


class QAbstractButton(QWidget):
    """text/checkable/checked; ``click()`` toggles a checkable button and emits clicked(bool); setting ``checked``
    emits toggled(bool) only. A disabled button ignores ``click()``, as in Qt."""

    clicked = Signal("bool", "")
    toggled = Signal("bool")
    pressed = Signal("")
    released = Signal("")

    def __init__(self, *args):
        parent = next((a for a in args if isinstance(a, QObject)), None)
        super().__init__(parent)
        texts = [a for a in args if isinstance(a, str)]
        self._text = texts[0] if texts else ""
        self._checkable = False
        self._checked = False
        self._icon = None

    @property
    def text(self):
        return self._text

    @text.setter
    def text(self, value):
        self._text = str(value)

    def setText(self, value):
        self.text = value

    @property
    def checkable(self):
        return self._checkable

    @checkable.setter
    def checkable(self, value):
        self._checkable = bool(value)

    def setCheckable(self, value):
        self.checkable = value

    def isCheckable(self):
        return self._checkable

    @property
    def checked(self):
        return self._checked

    @checked.setter
    def checked(self, value):
        value = bool(value)
        if not self._checkable or value == self._checked:
            return
        self._checked = value
        self._checked_changed()

    def _checked_changed(self):
        self._emit("toggled(bool)", self._checked)

    def setChecked(self, value):
        self.checked = value

    def isChecked(self):
        return self._checked

    def toggle(self):
        self.checked = not self._checked

    def click(self):
        if not self.enabled:
            return
        self._emit("pressed()")
        self._emit("released()")
        if self._checkable:
            self.checked = not self._checked
        self._emit("clicked(bool)", self._checked)
        self._emit("clicked()")

    animateClick = click

    def setIcon(self, icon):
        self._icon = icon

    def icon(self):
        return self._icon

    def _keep(self, *args):
        pass

    setIconSize = setShortcut = setAutoExclusive = setAutoRepeat = _keep


class QPushButton(QAbstractButton):
    def _keep(self, *args):
        pass

    setDefault = setAutoDefault = setFlat = setMenu = _keep


class QToolButton(QAbstractButton):
    triggered = Signal("QAction*")

    def __init__(self, *args):
        super().__init__(*args)
        self._default_action = None
        self._menu = None

    def setDefaultAction(self, action):
        self._default_action = action

    def defaultAction(self):
        return self._default_action

    def setMenu(self, menu):
        self._menu = menu

    def menu(self):
        return self._menu

    def _keep(self, *args):
        pass

    setToolButtonStyle = setPopupMode = setAutoRaise = setArrowType = _keep


class QRadioButton(QAbstractButton):
    def __init__(self, *args):
        super().__init__(*args)
        self._checkable = True


class QCheckBox(QAbstractButton):
    """Checkable; a change of ``checked`` emits toggled(bool) and stateChanged(int) (0 or 2)."""

    stateChanged = Signal("int")

    def __init__(self, *args):
        super().__init__(*args)
        self._checkable = True

    def _checked_changed(self):
        self._emit("stateChanged(int)", Qt.Checked if self._checked else Qt.Unchecked)
        self._emit("toggled(bool)", self._checked)

    @property
    def checkState(self):
        return Qt.Checked if self._checked else Qt.Unchecked

    @checkState.setter
    def checkState(self, value):
        if value == Qt.PartiallyChecked:
            raise NotImplementedError("tristate check boxes are not stood in")
        self.checked = value == Qt.Checked

    def setCheckState(self, value):
        self.checkState = value


class QComboBox(QWidget):
    """Items with text and data. Setting ``currentIndex`` emits currentIndexChanged(int) and
    currentTextChanged(QString) only on a change; adding the first item selects it, clearing selects -1."""

    currentIndexChanged = Signal("int", "QString")
    currentTextChanged = Signal("QString")
    activated = Signal("int", "QString")
    editTextChanged = Signal("QString")

    InsertAtBottom, NoInsert, AdjustToContents = 3, 0, 0

    def __init__(self, parent=None):
        super().__init__(parent)
        self._texts: list[str] = []
        self._data: list = []
        self._index = -1
        self._editable = False

    def _set_index(self, index):
        index = int(index)
        if index < -1 or index >= len(self._texts):
            index = -1
        if index == self._index:
            return
        self._index = index
        self._emit("currentIndexChanged(int)", index)
        self._emit("currentIndexChanged(QString)", self.currentText)
        self._emit("currentTextChanged(QString)", self.currentText)

    @property
    def currentIndex(self):
        return self._index

    @currentIndex.setter
    def currentIndex(self, value):
        self._set_index(value)

    def setCurrentIndex(self, index):
        self._set_index(index)

    @property
    def currentText(self):
        return self._texts[self._index] if self._index >= 0 else ""

    @currentText.setter
    def currentText(self, value):
        self.setCurrentText(value)

    def setCurrentText(self, text):
        index = self.findText(text)
        if index >= 0:
            self._set_index(index)

    @property
    def currentData(self):
        """A Q_PROPERTY: PythonQt gives properties precedence over methods of the same name."""
        return self._data[self._index] if self._index >= 0 else None

    @property
    def count(self):
        return len(self._texts)

    def addItem(self, *args):
        icon_first = args and isinstance(args[0], QIcon)
        text, data = (args[1:] + (None,))[:2] if icon_first else (args + (None,))[:2]
        self.insertItem(len(self._texts), text, data)

    def addItems(self, texts):
        for text in texts:
            self.addItem(text)

    def insertItem(self, index, text, data=None):
        index = max(0, min(int(index), len(self._texts)))
        was_empty = not self._texts
        self._texts.insert(index, str(text))
        self._data.insert(index, data)
        if was_empty:
            self._set_index(0)
        elif index <= self._index:
            self._index += 1  # the current item moved; Qt does not signal this

    def removeItem(self, index):
        if not 0 <= index < len(self._texts):
            return
        del self._texts[index]
        del self._data[index]
        if index < self._index:
            self._index -= 1
        elif index == self._index:
            self._index = -2  # force a change signal
            self._set_index(min(index, len(self._texts) - 1))

    def clear(self):
        self._texts.clear()
        self._data.clear()
        self._set_index(-1)

    def itemText(self, index):
        return self._texts[index] if 0 <= index < len(self._texts) else ""

    def setItemText(self, index, text):
        self._texts[index] = str(text)

    def itemData(self, index, role=Qt.UserRole):
        return self._data[index] if 0 <= index < len(self._data) else None

    def setItemData(self, index, value, role=Qt.UserRole):
        if role == Qt.UserRole:
            self._data[index] = value

    def findText(self, text, flags=0):
        try:
            return self._texts.index(str(text))
        except ValueError:
            return -1

    def findData(self, data, role=Qt.UserRole, flags=0):
        for index, value in enumerate(self._data):
            if value == data:
                return index
        return -1

    @property
    def editable(self):
        return self._editable

    @editable.setter
    def editable(self, value):
        self._editable = bool(value)

    def setEditable(self, value):
        self.editable = value

    def _keep(self, *args):
        pass

    setSizeAdjustPolicy = setMaxVisibleItems = setInsertPolicy = setIconSize = setMinimumContentsLength = _keep


class _RangeMixin:
    """minimum/maximum/value with Qt's clamping; subclasses choose int or float and the signal to emit."""

    _value_type = int
    _value_signal = "valueChanged(int)"

    def _init_range(self, minimum, maximum, value):
        self._minimum, self._maximum, self._value = minimum, maximum, value
        self._single_step = 1
        self._page_step = 10

    def _coerce(self, value):
        return self._value_type(value)

    def _set_value(self, value):
        value = min(max(self._coerce(value), self._minimum), self._maximum)
        if value == self._value:
            return
        self._value = value
        self._emit(self._value_signal, value)

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, value):
        self._set_value(value)

    def setValue(self, value):
        self._set_value(value)

    @property
    def minimum(self):
        return self._minimum

    @minimum.setter
    def minimum(self, value):
        self._minimum = self._coerce(value)
        self._maximum = max(self._maximum, self._minimum)
        self._set_value(self._value)

    def setMinimum(self, value):
        self.minimum = value

    @property
    def maximum(self):
        return self._maximum

    @maximum.setter
    def maximum(self, value):
        self._maximum = self._coerce(value)
        self._minimum = min(self._minimum, self._maximum)
        self._set_value(self._value)

    def setMaximum(self, value):
        self.maximum = value

    def setRange(self, minimum, maximum):
        self._minimum = self._coerce(minimum)
        self._maximum = max(self._minimum, self._coerce(maximum))
        self._set_value(self._value)

    @property
    def singleStep(self):
        return self._single_step

    @singleStep.setter
    def singleStep(self, value):
        self._single_step = value

    def setSingleStep(self, value):
        self.singleStep = value

    @property
    def pageStep(self):
        return self._page_step

    @pageStep.setter
    def pageStep(self, value):
        self._page_step = value

    def setPageStep(self, value):
        self.pageStep = value


class QAbstractSlider(_RangeMixin, QWidget):
    valueChanged = Signal("int")
    sliderMoved = Signal("int")
    sliderPressed = Signal("")
    sliderReleased = Signal("")
    rangeChanged = Signal("int,int")

    def __init__(self, *args):
        super().__init__(next((a for a in args if isinstance(a, QObject)), None))
        self._init_range(0, 99, 0)
        self._orientation = next((a for a in args if isinstance(a, int)), Qt.Horizontal)

    @property
    def orientation(self):
        return self._orientation

    @orientation.setter
    def orientation(self, value):
        self._orientation = value

    def setOrientation(self, value):
        self.orientation = value

    def _keep(self, *args):
        pass

    setTickPosition = setTickInterval = setTracking = _keep


class QSlider(QAbstractSlider):
    NoTicks, TicksAbove, TicksBelow, TicksBothSides = 0, 1, 2, 3


class QScrollBar(QAbstractSlider):
    pass


class QSpinBox(_RangeMixin, QWidget):
    valueChanged = Signal("int", "QString")
    editingFinished = Signal("")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._init_range(0, 99, 0)
        self._suffix = self._prefix = ""

    def _set_value(self, value):
        before = self._value
        super()._set_value(value)
        if self._value != before:
            self._emit("valueChanged(QString)", f"{self._prefix}{self._value}{self._suffix}")

    @property
    def suffix(self):
        return self._suffix

    @suffix.setter
    def suffix(self, value):
        self._suffix = str(value)

    def setSuffix(self, value):
        self.suffix = value

    @property
    def prefix(self):
        return self._prefix

    @prefix.setter
    def prefix(self, value):
        self._prefix = str(value)

    def setPrefix(self, value):
        self.prefix = value


class _DecimalsMixin(_RangeMixin):
    """Floating value rounded to ``decimals`` (QDoubleSpinBox::setValue rounds, default 2 decimals)."""

    _value_type = float
    _value_signal = "valueChanged(double)"

    def _init_decimals(self, minimum, maximum, decimals=2):
        self._init_range(float(minimum), float(maximum), 0.0)
        self._decimals = decimals
        self._single_step = 1.0

    def _coerce(self, value):
        value = float(value)
        return round(value, self._decimals) if self._decimals is not None else value

    @property
    def decimals(self):
        return self._decimals

    @decimals.setter
    def decimals(self, value):
        self._decimals = int(value)
        self._minimum, self._maximum = self._coerce(self._minimum), self._coerce(self._maximum)
        self._set_value(self._value)

    def setDecimals(self, value):
        self.decimals = value


class QDoubleSpinBox(_DecimalsMixin, QWidget):
    valueChanged = Signal("double", "QString")
    editingFinished = Signal("")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._init_decimals(0.0, 99.99)
        self._suffix = self._prefix = ""

    suffix = QSpinBox.suffix
    setSuffix = QSpinBox.setSuffix
    prefix = QSpinBox.prefix
    setPrefix = QSpinBox.setPrefix


class QLineEdit(QWidget):
    """``text`` set programmatically emits textChanged(QString) (not textEdited), as in Qt."""

    textChanged = Signal("QString")
    textEdited = Signal("QString")
    returnPressed = Signal("")
    editingFinished = Signal("")

    Normal, NoEcho, Password = 0, 1, 2

    def __init__(self, text="", parent=None):
        if isinstance(text, QObject):
            text, parent = "", text
        super().__init__(parent)
        self._text = str(text)
        self._placeholder = ""
        self._read_only = False

    @property
    def text(self):
        return self._text

    @text.setter
    def text(self, value):
        value = str(value)
        if value != self._text:
            self._text = value
            self._emit("textChanged(QString)", value)

    def setText(self, value):
        self.text = value

    def clear(self):
        self.text = ""

    @property
    def placeholderText(self):
        return self._placeholder

    @placeholderText.setter
    def placeholderText(self, value):
        self._placeholder = str(value)

    def setPlaceholderText(self, value):
        self.placeholderText = value

    @property
    def readOnly(self):
        return self._read_only

    @readOnly.setter
    def readOnly(self, value):
        self._read_only = bool(value)

    def setReadOnly(self, value):
        self.readOnly = value

    def _keep(self, *args):
        pass

    setEchoMode = setValidator = setMaxLength = setClearButtonEnabled = selectAll = _keep


def _html_to_plain(text: str) -> str:
    text = re.sub(r"<br\s*/?>", "\n", text, flags=re.IGNORECASE)
    text = re.sub(r"</p\s*>", "\n", text, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text).strip("\n")


class QTextEdit(QFrame):
    """Plain text and a minimal HTML-to-text conversion (``<br>``/``<p>`` become line breaks); textChanged()."""

    textChanged = Signal("")

    def __init__(self, text="", parent=None):
        if isinstance(text, QObject):
            text, parent = "", text
        super().__init__(parent)
        self._plain = str(text)
        self._read_only = False

    def _set(self, plain):
        if plain != self._plain:
            self._plain = plain
            self._emit("textChanged()")

    def setPlainText(self, text):
        self._set(str(text))

    def toPlainText(self):
        return self._plain

    @property
    def plainText(self):
        return self._plain

    @plainText.setter
    def plainText(self, value):
        self.setPlainText(value)

    def setHtml(self, text):
        self._set(_html_to_plain(str(text)))

    def setText(self, text):
        text = str(text)
        self._set(_html_to_plain(text) if re.search(r"<[a-zA-Z/][^>]*>", text) else text)

    def toHtml(self):
        return html.escape(self._plain).replace("\n", "<br/>")

    html = property(toHtml, setHtml)

    def append(self, text):
        self._set(f"{self._plain}\n{text}" if self._plain else str(text))

    insertPlainText = append

    def clear(self):
        self._set("")

    @property
    def readOnly(self):
        return self._read_only

    @readOnly.setter
    def readOnly(self, value):
        self._read_only = bool(value)

    def setReadOnly(self, value):
        self.readOnly = value

    def _keep(self, *args):
        pass

    setLineWrapMode = setWordWrapMode = setAcceptRichText = ensureCursorVisible = setPlaceholderText = _keep
    moveCursor = setTabChangesFocus = _keep

    def verticalScrollBar(self):
        return QScrollBar(self)


class QPlainTextEdit(QTextEdit):
    def appendPlainText(self, text):
        self.append(text)

    def setHtml(self, text):
        raise NotImplementedError("QPlainTextEdit has no setHtml")


class QTextBrowser(QTextEdit):
    anchorClicked = Signal("QUrl")

    def setOpenExternalLinks(self, value):
        pass


class QProgressBar(QWidget):
    """minimum/maximum/value; a value outside the range is ignored (QProgressBar::setValue), reset() sets
    minimum - 1."""

    valueChanged = Signal("int")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._minimum, self._maximum, self._value = 0, 100, -1
        self._format = "%p%"
        self._text_visible = True

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, value):
        value = int(value)
        if value == self._value:
            return
        if (value > self._maximum or value < self._minimum) and (self._maximum != 0 or self._minimum != 0):
            return
        self._value = value
        self._emit("valueChanged(int)", value)

    def setValue(self, value):
        self.value = value

    @property
    def minimum(self):
        return self._minimum

    @minimum.setter
    def minimum(self, value):
        self.setRange(value, max(self._maximum, int(value)))

    def setMinimum(self, value):
        self.minimum = value

    @property
    def maximum(self):
        return self._maximum

    @maximum.setter
    def maximum(self, value):
        self.setRange(min(self._minimum, int(value)), value)

    def setMaximum(self, value):
        self.maximum = value

    def setRange(self, minimum, maximum):
        self._minimum, self._maximum = int(minimum), max(int(minimum), int(maximum))
        if self._value < self._minimum - 1 or self._value > self._maximum:
            self.reset()

    def reset(self):
        self._value = self._minimum - 1

    @property
    def format(self):
        return self._format

    @format.setter
    def format(self, value):
        self._format = str(value)

    def setFormat(self, value):
        self.format = value

    @property
    def textVisible(self):
        return self._text_visible

    @textVisible.setter
    def textVisible(self, value):
        self._text_visible = bool(value)

    def setTextVisible(self, value):
        self.textVisible = value

    def text(self):
        if self._value < self._minimum:
            return ""
        span = self._maximum - self._minimum
        percent = 100 if span == 0 else round(100 * (self._value - self._minimum) / span)
        return self._format.replace("%p", str(percent)).replace("%v", str(self._value)).replace("%m", str(span))


class QGroupBox(QWidget):
    toggled = Signal("bool")
    clicked = Signal("bool", "")

    def __init__(self, title="", parent=None):
        if isinstance(title, QObject):
            title, parent = "", title
        super().__init__(parent)
        self._title = str(title)
        self._checkable = False
        self._checked = True

    @property
    def title(self):
        return self._title

    @title.setter
    def title(self, value):
        self._title = str(value)

    def setTitle(self, value):
        self.title = value

    checkable = QAbstractButton.checkable
    setCheckable = QAbstractButton.setCheckable
    checked = QAbstractButton.checked
    setChecked = QAbstractButton.setChecked
    isChecked = QAbstractButton.isChecked

    def _checked_changed(self):
        self._emit("toggled(bool)", self._checked)


class QStackedWidget(QFrame):
    currentChanged = Signal("int")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pages = []
        self._index = -1

    def addWidget(self, widget):
        widget.setParent(self)
        self._pages.append(widget)
        if self._index < 0:
            self.currentIndex = 0
        return len(self._pages) - 1

    _add_ui_child = addWidget

    def _child_visible(self, child):
        return child not in self._pages or self._pages.index(child) == self._index

    @property
    def currentIndex(self):
        return self._index

    @currentIndex.setter
    def currentIndex(self, value):
        if value != self._index and -1 <= value < len(self._pages):
            self._index = value
            self._emit("currentChanged(int)", value)

    def setCurrentIndex(self, value):
        self.currentIndex = value

    def widget(self, index):
        return self._pages[index] if 0 <= index < len(self._pages) else None

    def currentWidget(self):
        return self.widget(self._index)

    def setCurrentWidget(self, widget):
        self.currentIndex = self._pages.index(widget)

    def count(self):
        return len(self._pages)

    def indexOf(self, widget):
        return self._pages.index(widget) if widget in self._pages else -1


class QTabWidget(QStackedWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._titles = []

    def addTab(self, widget, *label):
        self._titles.append(str(label[-1]) if label else "")
        return self.addWidget(widget)

    def _add_ui_child(self, widget, attributes=None):
        self.addTab(widget, (attributes or {}).get("title", ""))

    def tabText(self, index):
        return self._titles[index]

    def setTabText(self, index, text):
        self._titles[index] = str(text)

    def setTabEnabled(self, index, enabled):
        self._pages[index].setEnabled(enabled)

    def isTabEnabled(self, index):
        return self._pages[index]._enabled


class QScrollArea(QFrame):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._content = None

    def setWidget(self, widget):
        widget.setParent(self)
        self._content = widget

    _add_ui_child = setWidget

    def widget(self):
        return self._content

    def setWidgetResizable(self, value):
        pass

    setHorizontalScrollBarPolicy = setVerticalScrollBarPolicy = setWidgetResizable


class QSplitter(QFrame):
    def addWidget(self, widget):
        widget.setParent(self)

    _add_ui_child = addWidget

    def setSizes(self, sizes):
        pass

    setOrientation = setStretchFactor = setChildrenCollapsible = setSizes


class QAction(QObject):
    triggered = Signal("bool", "")
    toggled = Signal("bool")

    def __init__(self, *args):
        parent = next((a for a in args if isinstance(a, QObject)), None)
        super().__init__(parent)
        texts = [a for a in args if isinstance(a, str)]
        self.text = texts[0] if texts else ""
        self.toolTip = self.statusTip = ""
        self.checkable = self.checked = False
        self.enabled = self.visible = True
        self.icon = next((a for a in args if isinstance(a, QIcon)), None)

    def setText(self, text):
        self.text = str(text)

    def setToolTip(self, text):
        self.toolTip = str(text)

    def setStatusTip(self, text):
        self.statusTip = str(text)

    def setCheckable(self, value):
        self.checkable = bool(value)

    def setChecked(self, value):
        value = bool(value)
        if self.checkable and value != self.checked:
            self.checked = value
            self._emit("toggled(bool)", value)

    def setEnabled(self, value):
        self.enabled = bool(value)

    def setVisible(self, value):
        self.visible = bool(value)

    def setIcon(self, icon):
        self.icon = icon

    def setShortcut(self, *args):
        pass

    setData = setMenu = setShortcutContext = setPriority = setShortcut

    def trigger(self):
        if not self.enabled:
            return
        if self.checkable:
            self.setChecked(not self.checked)
        self._emit("triggered(bool)", self.checked)
        self._emit("triggered()")


class QMenu(QWidget):
    triggered = Signal("QAction*")
    aboutToShow = Signal("")

    def __init__(self, *args):
        super().__init__(next((a for a in args if isinstance(a, QObject)), None))
        self._actions = []
        self.title = next((a for a in args if isinstance(a, str)), "")

    def addAction(self, action, *args):
        if isinstance(action, str):
            action = QAction(action, self)
        self._actions.append(action)
        return action

    def insertAction(self, before, action):
        index = self._actions.index(before) if before in self._actions else len(self._actions)
        self._actions.insert(index, action)

    def addSeparator(self):
        return self.addAction(QAction(self))

    def insertSeparator(self, before):
        self.insertAction(before, QAction(self))

    def addMenu(self, menu):
        if isinstance(menu, str):
            menu = QMenu(menu, self)
        self._actions.append(menu)
        return menu

    def actions(self):
        return list(self._actions)

    def clear(self):
        self._actions.clear()

    def exec_(self, *args):
        raise NotImplementedError("a context menu waits for the user; trigger the QAction instead")

    exec = popup = exec_


class QStatusBar(QWidget):
    messageChanged = Signal("QString")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.messages: list[str] = []

    def showMessage(self, message, timeout=0):
        self.messages.append(str(message))
        self._emit("messageChanged(QString)", str(message))

    def clearMessage(self):
        pass

    def currentMessage(self):
        return self.messages[-1] if self.messages else ""


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

    def __init__(self, parent=None, *args):
        super().__init__(parent)
        self._result = QDialog.Rejected
        self._open = False
        self._modal = False

    @property
    def modal(self):
        return self._modal

    @modal.setter
    def modal(self, value):
        self._modal = bool(value)

    def setModal(self, value):
        self.modal = value

    def done(self, result):
        self._result = result
        self._open = False
        self._hidden_explicitly = True
        self._emit("finished(int)", result)
        self._emit("accepted()" if result == QDialog.Accepted else "rejected()")

    def accept(self):
        self.done(QDialog.Accepted)

    def reject(self):
        self.done(QDialog.Rejected)

    def close(self):
        if self._open:
            self.reject()
        self.hide()
        return True

    def result(self):
        return self._result

    def show(self):
        self._open = True
        super().show()

    open = show

    def _label_text(self):
        return "\n".join(child.text for child in self.findChildren(QLabel) if child.text)

    def exec_(self):
        rt = runtime.current()
        rt.record(runtime.Dialog("dialog", self.windowTitle, self._label_text()))
        self.show()
        rt.run_until(lambda: not self._open)
        if self._open:
            raise RuntimeError(f"modal dialog {self.windowTitle!r} would wait for the user: nothing closes it")
        return self._result

    exec = exec_


class QMessageBox(QDialog):
    """Message box; ``exec_()`` and the static helpers record it in the session's ``dialogs`` and return the
    scripted answer (``s.answer_confirm``): OK/Yes/Retry by default, Cancel/No/Close when answered False."""

    NoButton, Ok, Save, SaveAll, Open, Yes, YesToAll, No, NoToAll = 0, 0x400, 0x800, 0x1000, 0x2000, 0x4000, 0x8000, 0x10000, 0x20000
    Abort, Retry, Ignore, Close, Cancel, Discard, Help, Apply, Reset = 0x40000, 0x80000, 0x100000, 0x200000, 0x400000, 0x800000, 0x1000000, 0x2000000, 0x4000000
    RestoreDefaults = 0x8000000
    NoIcon, Information, Warning, Critical, Question = 0, 1, 2, 3, 4
    InvalidRole, AcceptRole, RejectRole, DestructiveRole, ActionRole, HelpRole, YesRole, NoRole, ApplyRole = -1, 0, 1, 2, 3, 4, 5, 6, 8

    _KIND = {NoIcon: "info", Information: "info", Warning: "warning", Critical: "error", Question: "question"}
    _AFFIRMATIVE = (Ok, Yes, Retry, Save, Open, Apply, YesToAll, SaveAll)
    _NEGATIVE = (Cancel, No, Close, Abort, Discard, Ignore, NoToAll)

    buttonClicked = Signal("QAbstractButton*")

    def __init__(self, *args):
        parent = next((a for a in args if isinstance(a, QObject)), None)
        super().__init__(parent)
        self.text = ""
        self.informativeText = ""
        self.detailedText = ""
        self.icon = QMessageBox.NoIcon
        self.standardButtons = QMessageBox.Ok
        self.defaultButton = None
        self.textFormat = Qt.AutoText
        self._custom_buttons = []  # (button, role)
        self._clicked = None
        if len(args) >= 3 and isinstance(args[0], int) and isinstance(args[1], str):  # (icon, title, text, ...)
            self.icon, self.windowTitle, self.text = args[0], args[1], str(args[2])
            if len(args) > 3 and isinstance(args[3], int):
                self.standardButtons = args[3]

    def setText(self, text):
        self.text = str(text)

    def setInformativeText(self, text):
        self.informativeText = str(text)

    def setDetailedText(self, text):
        self.detailedText = str(text)

    def setIcon(self, icon):
        self.icon = icon

    def setStandardButtons(self, buttons):
        self.standardButtons = buttons

    def setDefaultButton(self, button):
        self.defaultButton = button

    def setTextFormat(self, value):
        self.textFormat = value

    def setEscapeButton(self, button):
        pass

    def addButton(self, button, role=None):
        if isinstance(button, int):
            self.standardButtons |= button
            return None
        if isinstance(button, str):
            button = QPushButton(button, self)
        self._custom_buttons.append((button, role))
        return button

    def clickedButton(self):
        return self._clicked

    def _answer(self, rt):
        """The scripted answer as the button the user would press."""
        yes = rt.confirm_answer
        if self._custom_buttons:
            wanted = (QMessageBox.AcceptRole, QMessageBox.YesRole, QMessageBox.ApplyRole) if yes else (
                QMessageBox.RejectRole, QMessageBox.NoRole, QMessageBox.DestructiveRole)
            chosen = next((b for b, role in self._custom_buttons if role in wanted), self._custom_buttons[0][0])
            self._clicked = chosen
            return chosen
        offered = [b for b in (self._AFFIRMATIVE if yes else self._NEGATIVE) if self.standardButtons & b]
        if offered:
            return offered[0]
        offered = [b for b in self._AFFIRMATIVE + self._NEGATIVE if self.standardButtons & b]
        return offered[0] if offered else QMessageBox.Ok

    def _is_choice(self):
        buttons = [b for b in self._AFFIRMATIVE + self._NEGATIVE if self.standardButtons & b]
        return len(buttons) + len(self._custom_buttons) > 1

    def exec_(self):
        rt = runtime.current()
        answer = self._answer(rt) if self._is_choice() else self._answer_single()
        # slicer.util.messageBox pads the title with spaces to widen the box: the record keeps the words
        rt.record(runtime.Dialog(self._KIND.get(self.icon, "info"), self.windowTitle.strip(), self.text,
                                 self.detailedText, answer))
        return answer

    exec = exec_

    def _answer_single(self):
        offered = [b for b in self._AFFIRMATIVE + self._NEGATIVE if self.standardButtons & b]
        return offered[0] if offered else QMessageBox.Ok

    def show(self):
        """Non-modal box (e.g. slicer.util.MessageDialog): recorded when shown."""
        runtime.current().record(runtime.Dialog(self._KIND.get(self.icon, "info"), self.windowTitle.strip(),
                                                self.text, self.detailedText))
        super().show()

    @staticmethod
    def _static(icon, parent, title, text, buttons, default):
        box = QMessageBox(parent)
        box.icon, box.windowTitle, box.text, box.standardButtons = icon, str(title), str(text), buttons
        return box.exec_()

    @staticmethod
    def information(parent, title, text, buttons=0x400, default=0):
        return QMessageBox._static(QMessageBox.Information, parent, title, text, buttons, default)

    @staticmethod
    def warning(parent, title, text, buttons=0x400, default=0):
        return QMessageBox._static(QMessageBox.Warning, parent, title, text, buttons, default)

    @staticmethod
    def critical(parent, title, text, buttons=0x400, default=0):
        return QMessageBox._static(QMessageBox.Critical, parent, title, text, buttons, default)

    @staticmethod
    def question(parent, title, text, buttons=0x4000 | 0x10000, default=0):
        return QMessageBox._static(QMessageBox.Question, parent, title, text, buttons, default)


class QProgressDialog(QDialog):
    """labelText/minimum/maximum/value, ``wasCanceled``/``cancel()``; every instance is recorded in the session's
    ``progress_dialogs``. As in Qt: reaching the maximum with autoReset resets (value -1, canceled flag cleared)
    and with autoClose hides; setting a value on a shown modal dialog processes events."""

    canceled = Signal("")

    def __init__(self, *args):
        parent = next((a for a in args if isinstance(a, QObject)), None)
        super().__init__(parent)
        texts = [a for a in args if isinstance(a, str)]
        numbers = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
        self.labelText = texts[0] if texts else ""
        self._cancel_text = texts[1] if len(texts) > 1 else "Cancel"
        self._minimum, self._maximum = (numbers[0], numbers[1]) if len(numbers) >= 2 else (0, 100)
        self._value = -1
        self._canceled = False
        self.minimumDuration = 4000
        self.autoClose = True
        self.autoReset = True
        runtime.current().progress_dialogs.append(self)

    def setLabelText(self, text):
        self.labelText = str(text)

    @property
    def minimum(self):
        return self._minimum

    @minimum.setter
    def minimum(self, value):
        self._minimum = int(value)

    def setMinimum(self, value):
        self.minimum = value

    @property
    def maximum(self):
        return self._maximum

    @maximum.setter
    def maximum(self, value):
        self._maximum = int(value)

    def setMaximum(self, value):
        self.maximum = value

    def setRange(self, minimum, maximum):
        self._minimum, self._maximum = int(minimum), int(maximum)

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, value):
        self.setValue(value)

    def setValue(self, value):
        value = int(value)
        if value == self._value or not (self._minimum <= value <= self._maximum):
            return
        self._value = value
        if not self._open and self.minimumDuration == 0:
            self.show()
        if self._open and self._modal:
            runtime.current().app.processEvents()
        if value == self._maximum and self.autoReset:
            self.reset()

    def reset(self):
        if self.autoClose:
            self.hide()
            self._open = False
        self._value = self._minimum - 1
        self._canceled = False

    def setMinimumDuration(self, value):
        self.minimumDuration = int(value)

    def setAutoClose(self, value):
        self.autoClose = bool(value)

    def setAutoReset(self, value):
        self.autoReset = bool(value)

    def setCancelButton(self, button):
        pass

    def setCancelButtonText(self, text):
        self._cancel_text = text

    @property
    def wasCanceled(self):
        """A Q_PROPERTY, read as an attribute in PythonQt."""
        return self._canceled

    def cancel(self):
        """What the user's Cancel does (also callable from a test): flag, canceled(), reset and hide."""
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
    """Static helpers answered by the session's ``file_dialog_answer`` (a path, or a list for the plural
    helper); empty or None means the user cancelled. Each call is recorded as a ``file`` dialog."""

    ShowDirsOnly, DontResolveSymlinks = 0x1, 0x2
    AnyFile, ExistingFile, Directory, ExistingFiles = 0, 1, 2, 3

    @staticmethod
    def _answer(caption, plural=False):
        rt = runtime.current()
        answer = rt.file_dialog_answer
        if plural:
            answer = [str(a) for a in answer] if isinstance(answer, (list, tuple)) else ([str(answer)] if answer else [])
        else:
            answer = str(answer) if answer else ""
        rt.record(runtime.Dialog("file", str(caption or ""), "", answer=answer))
        return answer

    @staticmethod
    def getExistingDirectory(parent=None, caption="", directory="", options=0):
        return QFileDialog._answer(caption)

    @staticmethod
    def getOpenFileName(parent=None, caption="", directory="", filter="", *args):
        return QFileDialog._answer(caption)

    @staticmethod
    def getSaveFileName(parent=None, caption="", directory="", filter="", *args):
        return QFileDialog._answer(caption)

    @staticmethod
    def getOpenFileNames(parent=None, caption="", directory="", filter="", *args):
        return QFileDialog._answer(caption, plural=True)

    def exec_(self):
        raise NotImplementedError("a QFileDialog instance waits for the user; use the static helpers")


class QInputDialog(QDialog):
    @staticmethod
    def getText(*args, **kwargs):
        raise NotImplementedError("QInputDialog waits for the user's text; no stand-in answers it")

    getInt = getDouble = getItem = getText


# ---------------------------------------------------------------------------------------------------------------
# .ui loading


class QUiLoader(QObject):
    """Builds the widget tree of a Qt Designer file from the stand-in classes (see uiloader.py)."""

    def load(self, qfile, parent=None):
        from .uiloader import load_ui

        path = qfile.fileName() if isinstance(qfile, QFile) else str(qfile)
        return load_ui(path, parent)


# ---------------------------------------------------------------------------------------------------------------
# Anything else named ``qt.Q...``: a distinct generic class per name


_GENERIC: dict[str, type] = {}


def __getattr__(name):
    if name.startswith("Q") and name.isidentifier():
        if name not in _GENERIC:
            _GENERIC[name] = generic_class(name, __name__)
        return _GENERIC[name]
    raise AttributeError(f"module 'qt' (stand-in) has no attribute {name!r}")
