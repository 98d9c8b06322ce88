"""Names for people: petnames, contact-given and self-chosen names, impostor warnings."""

from node.names.petnames import PETNAMES_FILE, PetnameBook, check_petname
from node.names.resolver import SELF_MARK, Impostor, NameBook, NameSource, ResolvedName
from node.names.skeleton import are_confusable, skeleton

__all__ = [
    "PETNAMES_FILE",
    "SELF_MARK",
    "Impostor",
    "NameBook",
    "NameSource",
    "PetnameBook",
    "ResolvedName",
    "are_confusable",
    "check_petname",
    "skeleton",
]
