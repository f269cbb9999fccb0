"""Models registered at runtime (`POST /v1/models`), kept in a database and restored at start-up."""

from service.registry.lenses import (
    ConfiguredModel,
    InvalidRegistration,
    LensRegistry,
    RateLimited,
    RegistryFull,
    RegistryLimits,
    Restored,
    restore,
)
from service.registry.store import NameTaken, RegistryStore, StoredModel
from service.registry.uploads import Registration, decode_registration, registration_from_form

__all__ = [
    "ConfiguredModel",
    "InvalidRegistration",
    "LensRegistry",
    "NameTaken",
    "RateLimited",
    "Registration",
    "RegistryFull",
    "RegistryLimits",
    "RegistryStore",
    "Restored",
    "StoredModel",
    "decode_registration",
    "registration_from_form",
    "restore",
]
