"""The one error the export package raises."""


class ExportError(ValueError):
    """A model cannot be exported, or an exported file is missing, corrupt, foreign or belongs
    to another checkpoint; the message says which."""
