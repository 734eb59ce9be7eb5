"""``qt.QUiLoader().load(qfile)``: builds the widget tree of a Qt Designer .ui file from the stand-in classes, in
QFormBuilder's order: create the widget (child of its parent widget), apply its properties, build its layout and
the widgets in it, add combo box items, then apply ``currentIndex``; finally wire the ``<connections>`` section.

Classes resolve through the session's ``qt``, ``ctk`` and ``slicer`` modules (unknown names get the generic
class of their module). ``stdset="0"`` properties (e.g. SlicerParameterName) become dynamic properties; a standard
property the stand-in class does not model is kept as a dynamic property too, as QObject::setProperty does.
Property values other than strings, numbers, booleans, string lists and geometry, and child widgets outside a
layout (tab pages, scroll area contents, ...) are not stood in: NotImplementedError.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree

from . import qt

_SCALARS = {"string": str, "cstring": str, "bool": lambda text: text.strip() == "true", "number": int,
            "double": float, "float": float}


def _resolve_class(name: str):
    module_name = "ctk" if name.startswith("ctk") else ("qt" if name.startswith("Q") else "slicer")
    return getattr(sys.modules[module_name], name)


def _value(element):
    """The Python value of a ``<property>``'s value element."""
    if element.tag in _SCALARS:
        return _SCALARS[element.tag](element.text or "")
    if element.tag == "stringlist":
        return [child.text or "" for child in element.findall("string")]
    if element.tag == "rect":  # geometry: kept as a dynamic property (nothing is drawn)
        return {child.tag: int(child.text or 0) for child in element}
    raise NotImplementedError(f"<{element.tag}> property values in .ui files are not stood in")


def _apply_property(obj, prop):
    name, value = prop.get("name"), _value(prop[0])
    if prop.get("stdset", "1") == "0":
        obj.setProperty(name, value)
    elif name in qt._qt_properties(type(obj)):
        setattr(obj, name, value)
    elif callable(setter := getattr(obj, "set" + name[:1].upper() + name[1:], None)) and not obj._accepts_any_signal:
        setter(value)
    else:
        obj._dynamic[name] = value


class _Builder:
    def __init__(self):
        self.by_name: dict[str, qt.QObject] = {}

    def _named(self, element, obj):
        obj.objectName = element.get("name", "")
        self.by_name[obj.objectName] = obj
        return obj

    def widget(self, element, parent):
        cls = _resolve_class(element.get("class"))
        widget = self._named(element, cls(parent) if parent is not None else cls())
        properties = element.findall("property")
        deferred = [prop for prop in properties if prop.get("name") == "currentIndex"]  # applied after the items
        for prop in properties:
            if prop not in deferred:
                _apply_property(widget, prop)
        if element.find("widget") is not None:
            raise NotImplementedError(f"child widgets outside a layout ({element.get('class')}) are not stood in")
        if element.find("layout") is not None:
            self.layout(element.find("layout"), widget)
        if isinstance(widget, qt.QComboBox):
            for item in element.findall("item"):
                widget.addItem(next((_value(p[0]) for p in item.findall("property") if p.get("name") == "text"), ""))
        for prop in deferred:
            _apply_property(widget, prop)
        return widget

    def layout(self, element, owner, parent_layout=None):
        """The layout, added to ``parent_layout`` (if any) before its items, so that they find their owner."""
        layout = self._named(element, _resolve_class(element.get("class"))())
        if parent_layout is not None:
            self._add(parent_layout, layout)
        else:
            owner.setLayout(layout)
        for item in element.findall("item"):
            for child in item:
                if child.tag == "widget":
                    self._add(layout, self.widget(child, owner))
                elif child.tag == "layout":
                    self.layout(child, owner, layout)
                elif child.tag == "spacer":
                    self._add(layout, qt.QSpacerItem())
        return layout

    @staticmethod
    def _add(layout, thing):
        """In document order: the stand-in layouts keep no rows or columns (nothing is laid out)."""
        if isinstance(thing, qt.QSpacerItem):
            layout.addItem(thing)
        else:
            layout.addWidget(thing)  # a widget or a nested layout (QLayout.addLayout is the same)

    def connect(self, connections):
        for connection in connections.findall("connection"):
            sender = self.by_name[connection.findtext("sender")]
            receiver = self.by_name[connection.findtext("receiver")]
            sender.connect(connection.findtext("signal"), receiver, connection.findtext("slot"))


def load_ui(path, parent=None):
    root = ElementTree.parse(str(path)).getroot()
    builder = _Builder()
    widget = builder.widget(root.find("widget"), parent)
    connections = root.find("connections")
    if connections is not None:
        builder.connect(connections)
    return widget
