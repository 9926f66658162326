"""Undo/redo and A/B compare for the window: the sound as one value (``SoundState``) and the commands on it.

Every finished change (a pad drag, a run of arrow nudges, a run of edits to one sound control, a preset load, a
revert) is one ``StateCommand`` holding the state before and after; undo puts the before state back, so switching
presets never loses an edit (Ctrl+Z brings it back). A/B compare keeps one full state per side, each with its own
undo stack (a ``QUndoGroup`` follows the active side). Deleting a user preset is undoable too (the file is written
back).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtGui import QUndoCommand

from synth.timbre import Timbre

MERGE_SECONDS = 1.5  # edits of one kind closer together than this are one undo step
MERGE_IDS = {"nudge": 1, "gain": 2, "attack": 3, "release": 4, "character": 5}


@dataclass(frozen=True)
class SoundState:
    """What the player hears and sees as "the sound": the preset it came from and the timbre."""

    preset: str | None
    timbre: Timbre

    def same_sound(self, other: "SoundState | None", tolerance: float = 1e-4) -> bool:
        """Equal values (the point within ``tolerance``, presets store it to 4 decimals); the preset name aside."""
        if other is None:
            return False
        a, b = self.timbre, other.timbre
        values = zip((a.gain_db, a.attack_ms, a.release_ms), (b.gain_db, b.attack_ms, b.release_ms))
        return (abs(a.x - b.x) <= tolerance and abs(a.y - b.y) <= tolerance
                and all(abs(u - v) < 0.005 for u, v in values)  # the spin boxes show 2 decimals
                and (a.character is None or b.character is None or abs(a.character - b.character) <= 1e-6))


class StateCommand(QUndoCommand):
    """From ``before`` to ``after``; ``apply(state)`` puts a state on the window. The first redo (the push) does
    nothing: the change has already happened."""

    def __init__(self, text: str, before: SoundState, after: SoundState, apply, kind: str | None = None) -> None:
        super().__init__(text)
        self.before, self.after = before, after
        self._apply = apply
        self._kind = kind
        self._pushed = False
        self._at = time.monotonic()

    def id(self) -> int:
        return MERGE_IDS.get(self._kind or "", -1)

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, StateCommand) or other.id() != self.id() or self.id() < 0:
            return False
        if other._at - self._at > MERGE_SECONDS:
            return False
        self.after = other.after
        self._at = other._at
        return True

    def redo(self) -> None:
        if self._pushed:
            self._apply(self.after)
        self._pushed = True

    def undo(self) -> None:
        self._apply(self.before)


class DeletePresetCommand(QUndoCommand):
    """A user preset was deleted; undo writes it back (same name and values), redo deletes it again. Pushed after
    the delete succeeded, so the first redo does nothing."""

    def __init__(self, bar, preset) -> None:
        super().__init__(f"delete preset “{preset.name}”")
        self.bar, self.preset = bar, preset
        self._pushed = False

    def redo(self) -> None:
        if self._pushed:
            self.bar.delete_now(self.preset.name)
        self._pushed = True

    def undo(self) -> None:
        self.bar.restore_deleted(self.preset)
