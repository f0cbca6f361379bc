"""What changed for the linkage stage since the published night, and what it leaves for the next.

The section `linkage` of the nightly state holds the published night's scored edges, its record
fingerprints, the model version and the clustering key. An incremental night needs all of them,
made the same way (the engine's `fingerprint_version`), with the same model; otherwise the
night is full.
"""

from __future__ import annotations

from pathlib import Path

from transforms.linkage.stage import LinkageFiles, PreviousLinkage

from .state import NightlyState, Section

__all__ = ["SECTION", "linkage_mode", "previous_linkage", "stage_linkage"]

SECTION = "linkage"


def linkage_mode(
    section: Section | None, model_version: str, fingerprint_version: str, full_requested: bool
) -> str:
    """'incremental', or 'full (<why>)'."""
    if full_requested:
        return "full (requested)"
    if section is None:
        return "full (no stored edges)"
    if section.values.get("fingerprint") != fingerprint_version:
        return "full (stored state from an older version or another engine)"
    if section.values.get("model_version") != model_version:
        return "full (model changed)"
    return "incremental"


def previous_linkage(section: Section, published_clusters: Path) -> PreviousLinkage:
    """The published night's linkage for an incremental night: the stored edges and
    fingerprints, and the clusters of the published xref (written to `published_clusters` by
    `warehouse.identity.write_published_clusters`)."""
    return PreviousLinkage(
        edges=section.files["edges"],
        fingerprints=section.files["records"],
        clusters=published_clusters,
        clustering=str(section.values.get("clustering")),
    )


def stage_linkage(
    state: NightlyState, files: LinkageFiles, model_version: str, clustering: str, fingerprint_version: str
) -> None:
    """Tonight's edges and fingerprints, for the next incremental night (committed with the
    warehouse by the publish step)."""
    state.stage_section(
        SECTION,
        {"model_version": model_version, "clustering": clustering, "fingerprint": fingerprint_version},
        {"edges": files.edges, "records": files.fingerprints},
    )
