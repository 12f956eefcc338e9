"""A staff user's admin form as the browser would send it: the values a page shows, to which a
test applies its changes (so a test names only the fields it is about)."""

from html.parser import HTMLParser


class _FormValues(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values: dict[str, object] = {}
        self._textarea = None
        self._select = None
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("method", "").lower() == "post":
            self._in_form = True
        if not self._in_form:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") in ("checkbox", "radio"):
                if "checked" in attrs:
                    self._add(name, attrs.get("value", "on"))
            else:
                self.values[name] = attrs.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""
        elif tag == "select" and name:
            self._select = (name, "multiple" in attrs)
            self.values.setdefault(name, [] if "multiple" in attrs else "")
        elif tag == "option" and self._select and "selected" in attrs:
            name, multiple = self._select
            self._add(name, attrs.get("value", "")) if multiple else self.values.__setitem__(
                name, attrs.get("value", "")
            )

    def _add(self, name, value):
        current = self.values.get(name)
        if isinstance(current, list):
            current.append(value)
        elif current is None:
            self.values[name] = value
        else:
            self.values[name] = [current, value]

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self._in_form = False

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data


def form_values(client, url: str) -> dict:
    """The fields of the admin page's form with the values it shows (textareas unescaped)."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    parser = _FormValues()
    parser.feed(response.content.decode())
    values = parser.values
    values.pop("csrfmiddlewaretoken", None)
    # A textarea's first newline is the HTML's, not the value's.
    return {k: (v[1:] if isinstance(v, str) and v.startswith("\n") else v) for k, v in values.items()}
