"""Runs nx-27017 with neosqlite's Python update path forced on.

nx-27017 translates simple updates into SQL JSON functions, which store a `$set` date as a
string and miss equality matches on ObjectId fields other than `_id`; its Python path keeps
BSON types as MongoDB does. Tests use this wrapper so the adapter can stay MongoDB-correct.
See docs/mongodb-stand-in.md.

With NX_27017_EXIT_WITH_STDIN set, it also exits when its standard input closes: the test
process that started it holds the other end, so a stand-in shared by a whole test process (and
never dropped) stops with that process.
"""
import os
import sys
import threading

from neosqlite.collection.query_helper import utils

utils.set_force_fallback(True)

from nx_27017.nx_27017 import main  # noqa: E402

if os.environ.get("NX_27017_EXIT_WITH_STDIN"):

    def _exit_with_parent():
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=_exit_with_parent, daemon=True).start()

sys.exit(main())
