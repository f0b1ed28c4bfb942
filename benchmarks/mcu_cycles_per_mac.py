"""Print how the microcontroller profiles' cycles-per-MAC constants follow from published MLPerf Tiny results.

    python benchmarks/mcu_cycles_per_mac.py

For each published keyword-spotting result (``edge_audio.device_latency.PUBLISHED``: board, clock, stack, median
throughput and the submission file it is read from), the reference DS-CNN's MACs (counted by the package's own
counter, as every model of the book is), the latency and the cycles per MAC = clock / throughput / MACs; then the
constants ``edge_audio.targets.CYCLES_PER_MAC`` holds, which must match. Needs no network and no device.
"""
from __future__ import annotations

from edge_audio.device_latency import KWS_INPUT, PUBLISHED, cycles_per_mac, kws_macs
from edge_audio.targets import CYCLES_PER_MAC, DEPLOYMENT_PROFILES, CortexM


def main() -> None:
    macs = kws_macs()
    print(f"MLPerf Tiny KWS DS-CNN (input {KWS_INPUT}): {macs:,} MACs (thop, as every model here is counted)\n")
    print(f"{'constant':26} {'board':16} {'core':10} {'clock':>8} {'inf/s':>8} {'ms':>8} {'cycles/MAC':>10}  stack")
    for name, result in PUBLISHED.items():
        print(f"{name:26} {result.board:16} {result.core:10} {result.clock_hz / 1e6:6.0f}MHz {result.throughput:8.3f} "
              f"{result.latency_ms:8.2f} {cycles_per_mac(result, macs):10.3f}  {result.stack}")
        print(f"{'':26} source: {result.source}")
    print("\nedge_audio.targets.CYCLES_PER_MAC:", CYCLES_PER_MAC)
    for name, profile in DEPLOYMENT_PROFILES.items():
        if isinstance(profile, CortexM):
            print(f"profile {name}: {profile.cycles_per_mac} cycles per MAC at {profile.clock_hz / 1e6:g} MHz, "
                  f"device latency limit {profile.max_device_latency_ms:g} ms (estimated)")
    derived = {name: round(cycles_per_mac(result, macs), 2) for name, result in PUBLISHED.items()}
    if derived != CYCLES_PER_MAC:
        raise SystemExit(f"the constants do not match the derivation: {derived}")


if __name__ == "__main__":
    main()
