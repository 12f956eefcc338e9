# Set by the ASGI entry points (config/asgi.py; manage.py for `runserver`, which serves through
# daphne) before Django's settings load, which then turn persistent connections off: under ASGI
# each request's sync code runs in a thread of its own, and a connection kept open outlives it.
SERVED_BY_ASGI = False
