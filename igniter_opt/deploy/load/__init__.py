"""The open-loop load generator: `generator` (arrivals, shards, worker processes, results),
`worker` (a process sending its shards over gRPC) and `protocol` (what the two pass)."""
