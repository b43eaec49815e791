"""File I/O: readers for every supported format, atomic writers, previews."""

from scicli.io.atomic import WriteGroup, atomic_write, write_json, write_text
from scicli.io.readers import SUPPORTED_SUFFIXES, list_keys, read_array
from scicli.io.writers import WRITE_SUFFIXES, write_array, write_preview, write_rgb

__all__ = [
    "WriteGroup",
    "SUPPORTED_SUFFIXES",
    "WRITE_SUFFIXES",
    "atomic_write",
    "list_keys",
    "read_array",
    "write_array",
    "write_json",
    "write_preview",
    "write_rgb",
    "write_text",
]
