"""Model hot reload: load and warm the new model beside the old one, swap only if it is sound.

Triggered by SIGHUP or POST /-/reload. A model that fails any check (corrupt ONNX, missing
tokenizer, another template version, wrong outputs) is refused with its reason and the old
model keeps serving; requests in flight finish on the model they started with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from shoprank.settings import Settings
from sidecar import metrics
from sidecar.rerank_service import RerankService
from sidecar.servicer import ModelSlot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: the version now serving, and why a new model was refused."""

    loaded: bool
    version: str
    previous: str
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        """JSON shape of the admin endpoint's answer."""
        return {"loaded": self.loaded, "version": self.version, "previous": self.previous, "error": self.error}


class ModelReloader:
    """Serialises reloads of the slot's model from the configured models directory."""

    def __init__(self, settings: Settings, slot: ModelSlot, loader: Callable[[Settings], RerankService]) -> None:
        self.settings = settings
        self.slot = slot
        self.loader = loader
        self._lock = threading.Lock()
        self.on_loaded: Callable[[RerankService], None] | None = None

    def reload(self) -> ReloadResult:
        """Load the model now in the models directory; swap it in, or refuse it and keep the old one."""
        with self._lock:
            previous = self.slot.get().model_version if self.slot.ready else ""
            try:
                service = self.loader(self.settings)
            except Exception as error:
                metrics.RELOADS.labels(result="refused").inc()
                log.error("model reload refused, still serving %s: %s", previous or "nothing", error)
                return ReloadResult(False, previous, previous, f"{type(error).__name__}: {error}")
            self.slot.set(service)
            if self.on_loaded is not None:
                self.on_loaded(service)
            metrics.RELOADS.labels(result="loaded").inc()
            log.info("model reloaded: %s -> %s", previous or "nothing", service.model_version)
            return ReloadResult(True, service.model_version, previous)
