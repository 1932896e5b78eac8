"""Runs nx-27017 with neosqlite's Python update path forced on.

nx-27017 translates simple updates into SQL JSON functions, which store a `$set` date as a
string and miss equality matches on ObjectId fields other than `_id`; its Python path keeps
BSON types as MongoDB does. Tests use this wrapper so the adapter can stay MongoDB-correct.
See docs/mongodb-stand-in.md.
"""
import sys

from neosqlite.collection.query_helper import utils

utils.set_force_fallback(True)

from nx_27017.nx_27017 import main  # noqa: E402

sys.exit(main())
