"""Playbacks and recordings on channels and bridges (res_stasis_playback.c, res_stasis_recording.c).

- A playback is returned `queued`; each media of its list gives PlaybackStarted (`playing`) and, when it
  ends, PlaybackContinuing (`continuing`, still naming that media, with `next_media_uri`) or, after the last,
  PlaybackFinished (`done`). Pausing shows `paused` in GET without an event; unpausing publishes
  PlaybackStarted again. Unplayable media (unknown scheme, missing recording) is skipped after its
  PlaybackStarted, without a final update, as Asterisk does.
- A recording is returned `queued`, then RecordingStarted (`recording`),
  RecordingFinished (`done`, or `canceled` when discarded) or RecordingFailed (with `cause`).
  Recording a channel that is bridged is accepted (201) and then fails with
  "Cannot record channel while in bridge", as Asterisk does.
- Media durations are simulated: `sound:` 1.5-4.4 s (fixed per name), `digits:`/`characters:` 0.6 s per
  character, `number:` 0.8 s per digit, `recording:` the stored recording's length, `tone:` until stopped.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from . import audio
from .errors import AriError
from .model import Bridge, Channel, LiveRecording, Playback, StoredRecording

if TYPE_CHECKING:
    from .pbx import Pbx

PLAYBACK_OPERATIONS = ("restart", "pause", "unpause", "reverse", "forward")
# Media whose playback can be stopped, paused and skipped (ast_control_streamfile / ast_control_tone); the
# say-functions behind digits:, number: and characters: cannot.
_CONTROLLABLE = ("sound", "recording", "tone")


class Unplayable(Exception):
    """Media Asterisk skips without a final update: an unknown scheme, a missing recording, a bad number."""


class Media:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.ev = pbx.events

    # --- playback -------------------------------------------------------------------------------------

    def duration(self, uri: str) -> float | None:
        """Simulated seconds, None for media that plays until stopped; raises Unplayable."""
        scheme, _, rest = uri.partition(":")
        if scheme == "sound" and rest:
            return 1.5 + (zlib.crc32(rest.encode()) % 30) / 10.0
        if scheme in ("digits", "characters") and rest:
            return 0.6 * len(rest)
        if scheme == "number" and rest.lstrip("-").isdigit():
            return 0.8 * len(rest.lstrip("-"))
        if scheme == "recording":
            stored = self.pbx.stored_recordings.get(rest)
            if stored is None:
                raise Unplayable(f"recording {rest} not found")
            return stored.duration
        if scheme == "tone" and rest:
            return None
        raise Unplayable(f"unsupported media {uri}")

    def play(self, target: Channel | Bridge, media: list[str], lang: str, playback_id: str | None,
             skipms: int) -> Playback:
        pbx = self.pbx
        if playback_id is not None and playback_id in pbx.playbacks:
            raise AriError(409, f"Playback with id '{playback_id}' already exists")
        pid = playback_id or pbx.bridging._uuid()
        kind = "bridge" if isinstance(target, Bridge) else "channel"
        pb = Playback(id=pid, media=list(media), target_uri=f"{kind}:{target.id}", language=lang,
                      skipms=skipms or 3000)
        pbx.playbacks[pid] = pb
        target.playbacks.append(pid)
        if isinstance(target, Bridge):
            target.internal += 1
        pbx.clock.call_soon(self._play_media, pb)
        return pb

    def _play_media(self, pb: Playback) -> None:
        """play_on_channel(), one media of the list: first update (PlaybackStarted), then play."""
        if pb.id not in self.pbx.playbacks:
            return
        pb.state = "playing"
        pb.paused = False
        self.ev.playback_started(pb)
        uri = pb.media[pb.index]
        try:
            seconds = self.duration(uri)
        except Unplayable:
            # Asterisk logs and goes on with the next media, without a final update for this one.
            self._next_media(pb, publish=False)
            return
        if uri.partition(":")[0] in _CONTROLLABLE:
            pb.controllable = True
        pb.started_at = self.pbx.clock.now()
        pb.remaining = seconds if seconds is not None else -1.0
        if seconds is not None:
            pb.timer = self.pbx.clock.call_later(seconds, self._media_done, pb)

    def _media_done(self, pb: Playback) -> None:
        pb.timer = None
        self._next_media(pb, publish=True)

    def _next_media(self, pb: Playback, publish: bool) -> None:
        """playback_final_update(): `continuing` (the snapshot still on the finished media) or `done`."""
        if pb.index + 1 >= len(pb.media):
            if publish:
                self._finish(pb, "done")
            else:
                self._release(pb)
            return
        if publish:
            pb.state = "continuing"
            self.ev.playback_continuing(pb)
        pb.index += 1
        self._play_media(pb)

    def _finish(self, pb: Playback, state: str) -> None:
        if pb.id not in self.pbx.playbacks:
            return
        pb.state = state
        self.ev.playback_finished(pb)
        self._release(pb)

    def _release(self, pb: Playback) -> None:
        pbx = self.pbx
        if pb.timer is not None:
            pb.timer.cancel()
            pb.timer = None
        pbx.playbacks.pop(pb.id, None)
        target: Channel | Bridge | None = (pbx.bridges.get(pb.target_id) if pb.target_kind == "bridge"
                                           else pbx.channels.get(pb.target_id))
        if target is not None and pb.id in target.playbacks:
            target.playbacks.remove(pb.id)
            if isinstance(target, Bridge):
                target.internal = max(0, target.internal - 1)

    def stop(self, pb: Playback) -> None:
        """DELETE /playbacks/{id}: a queued playback is cancelled (PlaybackFinished without a start)."""
        if pb.state != "queued" and not pb.controllable:
            raise AriError(500, "Could not stop playback")
        self._finish(pb, "done")

    def control(self, pb: Playback, operation: str) -> None:
        """res_stasis_playback.c operations[state][operation]."""
        if operation not in PLAYBACK_OPERATIONS:
            raise AriError(400, f"Invalid operation {operation}")
        state = pb.state
        allowed = {
            "queued": ("restart",),
            "playing": PLAYBACK_OPERATIONS,
            "continuing": PLAYBACK_OPERATIONS,
            "paused": ("pause", "unpause"),
        }.get(state, ())
        if operation not in allowed:
            raise AriError(409, f"Can only {operation} while media is playing")
        if state == "queued" or (operation == "unpause" and state != "paused") or \
                (operation == "pause" and state == "paused"):
            return  # playback_noop
        if not pb.controllable:
            raise AriError(500, f"Could not {operation} playback")
        clock = self.pbx.clock
        if operation == "pause":
            pb.state = "paused"  # published, but Asterisk has no event for `paused`
            pb.paused = True
            if pb.timer is not None:
                pb.timer.cancel()
                pb.timer = None
                pb.remaining = max(0.0, pb.remaining - (clock.now() - pb.started_at))
            return
        if operation == "unpause":
            pb.state = "playing"
            pb.paused = False
            self.ev.playback_started(pb)
            if pb.remaining >= 0:
                self._resume(pb, pb.remaining)
            return
        if pb.remaining < 0:
            return  # a tone: nothing to restart or skip in
        left = max(0.0, pb.remaining - (clock.now() - pb.started_at))
        total = self.duration(pb.media[pb.index]) or 0.0
        if operation == "restart":
            left = total
        else:
            skip = pb.skipms / 1000.0
            left = max(0.0, left - skip) if operation == "forward" else min(total, left + skip)
        if pb.timer is not None:
            pb.timer.cancel()
        self._resume(pb, left)

    def _resume(self, pb: Playback, left: float) -> None:
        pb.started_at = self.pbx.clock.now()
        pb.remaining = left
        pb.timer = self.pbx.clock.call_later(left, self._media_done, pb)

    # --- recording ------------------------------------------------------------------------------------

    def record(self, target: Channel | Bridge, *, name: str | None, fmt: str | None, max_duration: int,
               max_silence: int, if_exists: str, beep: bool, terminate_on: str) -> LiveRecording:
        pbx = self.pbx
        if max_duration < 0:
            raise AriError(400, "max_duration_seconds cannot be negative")
        if max_silence < 0:
            raise AriError(400, "max_silence_seconds cannot be negative")
        if terminate_on not in ("none", "any", "*", "#"):
            raise AriError(400, "terminateOn invalid")
        if if_exists not in ("fail", "overwrite", "append"):
            raise AriError(400, "ifExists invalid")
        if not fmt or fmt not in audio.FORMATS:
            raise AriError(422, "specified format is unknown on this system")
        if not name or ".." in name.split("/") or name.startswith("/"):
            raise AriError(400, "Recording name invalid")
        if name in pbx.live_recordings or (name in pbx.stored_recordings and if_exists == "fail"):
            raise AriError(409, f"Recording '{name}' already exists and can not be overwritten")
        kind = "bridge" if isinstance(target, Bridge) else "channel"
        rec = LiveRecording(name=name, format=fmt, target_uri=f"{kind}:{target.id}", max_duration=max_duration,
                            terminate_on=terminate_on, if_exists=if_exists, max_silence=max_silence)
        pbx.live_recordings[name] = rec
        if isinstance(target, Channel):
            target.recording = name
        else:
            target.recordings.append(name)
            target.internal += 1
        rec.timer = pbx.clock.call_later(0.5 if beep else 0.0, self._rec_start, rec)
        return rec

    def _rec_start(self, rec: LiveRecording) -> None:
        pbx = self.pbx
        rec.timer = None
        if rec.name not in pbx.live_recordings:
            return
        if rec.target_kind == "channel":
            ch = pbx.channels.get(rec.target_id)
            if ch is None:
                self._rec_fail(rec, "Channel hung up")
                return
            if ch.bridge_id is not None or ch.in_dial_bridge:
                self._rec_fail(rec, "Cannot record channel while in bridge")
                return
            if ch.state != "Up":
                # record_file() auto-answers the channel.
                pbx.lifecycle.answer(ch)
        rec.state = "recording"
        rec.started_at = pbx.clock.now()
        self.ev.recording_started(rec)
        if rec.max_duration > 0:
            rec.timer = pbx.clock.call_later(float(rec.max_duration), self._rec_end, rec, "done")

    def _rec_fail(self, rec: LiveRecording, cause: str) -> None:
        rec.state = "failed"
        rec.cause = cause
        self.ev.recording_failed(rec)
        self._rec_release(rec)

    def _rec_release(self, rec: LiveRecording) -> None:
        pbx = self.pbx
        pbx.live_recordings.pop(rec.name, None)
        if rec.timer is not None:
            rec.timer.cancel()
            rec.timer = None
        if rec.target_kind == "channel":
            ch = pbx.channels.get(rec.target_id)
            if ch is not None and ch.recording == rec.name:
                ch.recording = None
        else:
            bridge = pbx.bridges.get(rec.target_id)
            if bridge is not None and rec.name in bridge.recordings:
                bridge.recordings.remove(rec.name)
                bridge.internal = max(0, bridge.internal - 1)

    def _rec_end(self, rec: LiveRecording, state: str) -> None:
        pbx = self.pbx
        if rec.name not in pbx.live_recordings:
            return
        if rec.state == "queued":
            self._rec_release(rec)
            rec.state = "canceled" if state == "canceled" else "done"
            rec.duration = 0
            self.ev.recording_finished(rec)
            return
        now = pbx.clock.now()
        paused = rec.paused_total + (now - rec.paused_at if rec.paused_at is not None else 0.0)
        seconds = max(0.0, now - (rec.started_at or now) - paused)
        rec.duration = int(seconds)
        rec.state = state
        self._rec_release(rec)
        if state == "done":
            previous = pbx.stored_recordings.get(rec.name)
            if previous is not None and rec.if_exists == "append" and previous.format == rec.format:
                seconds += previous.duration
            pbx.stored_recordings[rec.name] = StoredRecording(rec.name, rec.format, seconds)
        self.ev.recording_finished(rec)

    def live(self, name: str) -> LiveRecording:
        rec = self.pbx.live_recordings.get(name)
        if rec is None:
            raise AriError(404, "Recording not found")
        return rec

    def rec_operation(self, name: str, operation: str) -> None:
        rec = self.live(name)
        now = self.pbx.clock.now()
        if operation == "stop":
            self._rec_end(rec, "done")
        elif operation == "cancel":
            self._rec_end(rec, "canceled")
        elif rec.state not in ("recording", "paused"):
            raise AriError(409, "Recording not in session")
        elif operation == "pause":
            if rec.state == "recording":
                rec.state = "paused"
                rec.paused_at = now
        elif operation == "unpause":
            # Pause and unpause change the state without publishing (recording_pause/unpause set it directly).
            if rec.state == "paused":
                rec.paused_total += now - (rec.paused_at or now)
                rec.paused_at = None
                rec.state = "recording"
        elif operation == "mute":
            rec.muted = True
        elif operation == "unmute":
            rec.muted = False

    # --- stored recordings ----------------------------------------------------------------------------

    def stored(self, name: str) -> StoredRecording:
        rec = self.pbx.stored_recordings.get(name)
        if rec is None:
            raise AriError(404, "Recording not found")
        return rec

    def copy(self, name: str, destination: str | None) -> StoredRecording:
        src = self.stored(name)
        if not destination:
            raise AriError(400, "Missing parameter destinationRecordingName")
        if ".." in destination.split("/") or destination.startswith("/"):
            raise AriError(400, "Recording name invalid")
        if destination in self.pbx.stored_recordings:
            raise AriError(409, "A recording with the same name already exists on the system")
        copy = StoredRecording(destination, src.format, src.duration)
        self.pbx.stored_recordings[destination] = copy
        return copy

    # --- hooks from the channel and bridge lifecycle -------------------------------------------------

    def on_channel_gone(self, ch: Channel) -> None:
        for pid in list(ch.playbacks):
            pb = self.pbx.playbacks.get(pid)
            if pb is not None:
                self._finish(pb, "done")
        if ch.recording is not None:
            rec = self.pbx.live_recordings.get(ch.recording)
            if rec is not None:
                self._rec_end(rec, "done")

    def on_bridge_gone(self, bridge: Bridge) -> None:
        for pid in list(bridge.playbacks):
            pb = self.pbx.playbacks.get(pid)
            if pb is not None:
                self._finish(pb, "done")
        for name in list(bridge.recordings):
            rec = self.pbx.live_recordings.get(name)
            if rec is not None:
                self._rec_end(rec, "done")

    def on_dtmf(self, ch: Channel, digit: str) -> None:
        if ch.recording is None:
            return
        rec = self.pbx.live_recordings.get(ch.recording)
        if rec is None or rec.state != "recording":
            return
        if rec.terminate_on == "any" or rec.terminate_on == digit:
            self._rec_end(rec, "done")
