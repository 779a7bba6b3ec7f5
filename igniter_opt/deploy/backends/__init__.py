"""Serving backends: where a plan's servers run. `launcher` is the interface (start a server, stop
them all), `local` (tritonserver processes) and `docker` (NGC containers) implement it, and `ray`
deploys a whole plan on a Ray cluster (placement group, server actors that use `local`)."""
