"""The inbound call generator: Poisson arrivals per DID, optionally shaped by an hourly profile.

A time-varying rate is sampled by thinning: candidate arrivals at the peak rate, each kept with probability
rate(t) / peak. Hours are simulated time of day, starting at the site's `start_hour`. Every draw comes from
the PBX's traffic random stream, so a seed gives the same arrivals, callers, patience and talk times.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .clock import Timer
from .config import DidConfig

if TYPE_CHECKING:
    from .pbx import Pbx

log = logging.getLogger(__name__)


class Traffic:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.enabled = pbx.cfg.traffic
        self.rate_scale = 1.0
        self.dids: list[DidConfig] = list(pbx.cfg.dids)
        self._timers: dict[str, Timer] = {}
        self._running = False

    def start(self) -> None:
        self._running = True
        if self.enabled:
            self._schedule_all()

    def stop(self) -> None:
        self._running = False
        self._cancel_all()

    def _cancel_all(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _schedule_all(self) -> None:
        self._cancel_all()
        for did in self.dids:
            self._schedule(did)

    def _peak(self, did: DidConfig) -> float:
        peak = max(did.profile) if did.profile else 1.0
        return did.rate_per_s * self.rate_scale * peak

    def _rate_now(self, did: DidConfig) -> float:
        rate = did.rate_per_s * self.rate_scale
        if did.profile:
            hour = int((self.pbx.site.start_hour + self.pbx.clock.now() / 3600.0) % 24)
            rate *= did.profile[hour]
        return rate

    def _schedule(self, did: DidConfig) -> None:
        peak = self._peak(did)
        if peak <= 0:
            return
        gap = self.pbx.rng_traffic.expovariate(peak)
        self._timers[did.number] = self.pbx.clock.call_later(gap, self._arrival, did)

    def _arrival(self, did: DidConfig) -> None:
        if not (self._running and self.enabled):
            return
        rng = self.pbx.rng_traffic
        peak = self._peak(did)
        keep = rng.random() * peak < self._rate_now(did)
        if keep:
            number = did.caller_prefix + "".join(str(rng.randint(0, 9)) for _ in range(7))
            patience = did.patience_s.sample(rng)
            talk = did.talk_s.sample(rng)
            args = list(did.args) if did.args is not None else ["inbound", did.number]
            self.pbx.counters.calls_generated += 1
            self.pbx.world.inbound_call(
                did=did.number, caller_number=number, caller_name="", app=did.app or self.pbx.default_app,
                args=args, patience_s=patience, talk_s=talk, hangup_by=did.hangup_by,
            )
        self._schedule(did)

    def configure(self, *, enabled: bool | None, rate_scale: float | None,
                  dids: list[DidConfig] | None) -> None:
        if rate_scale is not None:
            self.rate_scale = rate_scale
        if dids is not None:
            self.dids = dids
        if enabled is not None:
            self.enabled = enabled
        if self._running and self.enabled:
            self._schedule_all()
        else:
            self._cancel_all()

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "rate_scale": self.rate_scale,
            "dids": [d.model_dump(mode="json") for d in self.dids],
        }
