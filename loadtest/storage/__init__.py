"""The audio cache's remote home: an :class:`AudioStore` port, a folder and an Azure Blob
implementation, and verified push/pull (``voice-loadtest audio push|pull|ls``).

Import the edges from their modules (:mod:`loadtest.storage.blob` pulls in the Azure SDK);
this package only re-exports the core.
"""

from __future__ import annotations

from loadtest.storage.base import AudioStore, ObjectNotFound, StoredObject

__all__ = ["AudioStore", "ObjectNotFound", "StoredObject"]
