import os

# Playwright's sync API runs an event loop in this thread; Django refuses database access from a
# thread with a running loop unless told that this is deliberate (the test only uses the ORM to
# set up and check, never concurrently with the browser).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
