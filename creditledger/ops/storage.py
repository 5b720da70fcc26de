"""Static files: WhiteNoise's compressed, hashed names once collectstatic has run."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed names from the manifest that `collectstatic` writes (`make serve` runs it).

    Before collectstatic has ever run here — the test suite, a shell on a fresh checkout —
    there is no manifest, and the parent class would raise on every `{% static %}`; the
    plain name is the honest answer then. Once a manifest exists, a file missing from it is
    still an error.
    """

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:
            return name
        return super().stored_name(name)
