"""``qt.QUiLoader().load(qfile)``: builds the widget tree of a Qt Designer .ui file from the stand-in classes, in
QFormBuilder's order: create the widget (child of its parent widget), apply its properties, build its children and
layout, add combo box items, then apply ``currentIndex``; finally wire the ``<connections>`` section.

Classes resolve through the session's ``qt``, ``ctk`` and ``slicer`` modules (unknown names get the generic
class of their module). ``stdset="0"`` properties (e.g. SlicerParameterName) become dynamic properties; a standard
property the stand-in class does not model is kept as a dynamic property too, as QObject::setProperty does.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree

from . import qt


def _resolve_class(name: str):
    module_name = "ctk" if name.startswith("ctk") else ("qt" if name.startswith("Q") else "slicer")
    return getattr(sys.modules[module_name], name)


def _resolve_enum(text: str):
    value = 0
    for part in text.split("|"):
        scope, _, member = part.strip().rpartition("::")
        owner = qt.Qt if scope in ("", "Qt") else None
        if owner is None:
            try:
                owner = _resolve_class(scope)
            except AttributeError:
                return text
        resolved = getattr(owner, member, None)
        if not isinstance(resolved, int):
            return text
        value |= resolved
    return value


def _value(element):
    """The Python value of a ``<property>``'s value element."""
    tag, text = element.tag, (element.text or "")
    if tag in ("string", "cstring"):
        return text
    if tag == "bool":
        return text.strip() == "true"
    if tag == "number":
        return int(text)
    if tag in ("double", "float"):
        return float(text)
    if tag in ("enum", "set"):
        return _resolve_enum(text)
    if tag == "stringlist":
        return [child.text or "" for child in element.findall("string")]
    if tag == "size":
        return qt.QSize(int(element.findtext("width", "0")), int(element.findtext("height", "0")))
    if tag == "sizepolicy":
        return qt.QSizePolicy(_resolve_enum("QSizePolicy::" + element.get("hsizetype", "Preferred")),
                              _resolve_enum("QSizePolicy::" + element.get("vsizetype", "Preferred")))
    if tag == "rect":
        return {child.tag: int(child.text or 0) for child in element}
    if tag in ("iconset", "pixmap"):
        return qt.QIcon((element.findtext("normaloff") or text).strip())
    if tag == "color":
        return qt.QColor(*(int(element.findtext(c, "0")) for c in ("red", "green", "blue")))
    if tag == "url":
        return qt.QUrl(element.findtext("string", ""))
    return text


def _apply_property(obj, prop):
    name = prop.get("name")
    value_elements = list(prop)
    if not value_elements:
        return
    value = _value(value_elements[0])
    if prop.get("stdset", "1") == "0":
        obj.setProperty(name, value)
        return
    if name in qt._qt_properties(type(obj)):
        setattr(obj, name, value)
        return
    setter = getattr(obj, "set" + name[:1].upper() + name[1:], None)
    if callable(setter) and not getattr(type(obj), "_accepts_any_signal", False):
        setter(value)
        return
    obj._dynamic[name] = value


class _Builder:
    def __init__(self):
        self.by_name: dict[str, qt.QObject] = {}

    def widget(self, element, parent):
        cls = _resolve_class(element.get("class"))
        widget = cls(parent) if parent is not None else cls()
        widget.objectName = element.get("name", "")
        self.by_name[widget.objectName] = widget
        properties = element.findall("property")
        deferred = [prop for prop in properties if prop.get("name") == "currentIndex"]  # applied after the items
        for prop in properties:
            if prop.get("name") != "currentIndex":
                _apply_property(widget, prop)
        for child in element:
            if child.tag == "widget":
                attributes = {a.get("name"): _value(list(a)[0]) for a in child.findall("attribute") if list(a)}
                sub = self.widget(child, widget)
                add = getattr(widget, "_add_ui_child", None)
                if add is not None:
                    try:
                        add(sub, attributes)
                    except TypeError:
                        add(sub)
            elif child.tag == "layout":
                layout = self.layout(child)
                widget.setLayout(layout)
                self.fill_layout(layout, child, widget)
        if isinstance(widget, qt.QComboBox):
            for item in element.findall("item"):
                text = next((_value(list(p)[0]) for p in item.findall("property") if p.get("name") == "text"), "")
                widget.addItem(text)
        for prop in deferred:
            _apply_property(widget, prop)
        return widget

    def layout(self, element):
        layout = _resolve_class(element.get("class"))()
        layout.objectName = element.get("name", "")
        self.by_name[layout.objectName] = layout
        return layout

    def fill_layout(self, layout, element, owner):
        for item in element.findall("item"):
            row, column = int(item.get("row", -1)), int(item.get("column", -1))
            colspan = int(item.get("colspan", 1))
            for child in item:
                if child.tag == "widget":
                    self._add(layout, self.widget(child, owner), row, column, colspan)
                elif child.tag == "layout":
                    sub = self.layout(child)
                    self._add(layout, sub, row, column, colspan)
                    self.fill_layout(sub, child, owner)
                elif child.tag == "spacer":
                    self._add(layout, qt.QSpacerItem(), row, column, colspan)

    @staticmethod
    def _add(layout, thing, row, column, colspan):
        if isinstance(layout, qt.QFormLayout):
            role = (qt.QFormLayout.SpanningRole if colspan > 1 else
                    qt.QFormLayout.LabelRole if column == 0 else qt.QFormLayout.FieldRole)
            layout.setWidget(max(row, 0), role, thing) if not isinstance(thing, qt.QSpacerItem) else layout.addItem(thing)
        elif isinstance(layout, qt.QGridLayout) and not isinstance(thing, qt.QSpacerItem):
            (layout.addLayout if isinstance(thing, qt.QLayout) else layout.addWidget)(thing, max(row, 0), max(column, 0))
        elif isinstance(thing, qt.QLayout):
            layout.addLayout(thing)
        elif isinstance(thing, qt.QSpacerItem):
            layout.addItem(thing)
        else:
            layout.addWidget(thing)

    def connect(self, connections):
        for connection in connections.findall("connection"):
            sender = self.by_name[connection.findtext("sender")]
            receiver = self.by_name[connection.findtext("receiver")]
            signal, slot = connection.findtext("signal"), connection.findtext("slot")
            slot_name = qt._normalize(slot).partition("(")[0]
            if not hasattr(receiver, slot_name) and getattr(type(receiver), "_accepts_any_signal", False):
                continue  # a generic stand-in has no behaviour to connect to
            sender.connect(signal, receiver, slot)


def load_ui(path, parent=None):
    root = ElementTree.parse(str(path)).getroot()
    top = root.find("widget")
    if top is None:
        return None
    builder = _Builder()
    widget = builder.widget(top, parent)
    connections = root.find("connections")
    if connections is not None:
        builder.connect(connections)
    return widget
