"""Stream-processing simulation (``make bench-stream-sim``) -> bench/results/stream_sim.json.

How Lambda's DynamoDB Streams processing behaves at 100, 1,000 and 10,000 predictions a
second for the aggregator's two designs, over four simulated hours:

- **per_record** (the design replaced): one transaction per record, batches of 100,
  MaximumRecordAgeInSeconds 3600; every record updates the same hot bucket items, so
  concurrent transactions from different shards cancel each other (TransactionConflict,
  which the SDK's standard retries do not retry: the batch is retried from that record).
- **batch_merge_high_water_mark** (this one): batches of up to 1,000 within a 1 s window,
  merged in memory, one transaction per batch on the shard's own items (no conflicts),
  records kept until 6 hours old.

Model: a stream shard takes about 1,000 writes/s (DynamoDB's partition throughput), so a
table at R predictions/s has ceil(R / 1,000) shards, each with one worker
(ParallelizationFactor 1); a transaction takes 10-25 ms (uniform), an invocation adds
20 ms, a GetRecords call 10 ms, merging 5 us a record. With n shards contending for the same
items, a per-record transaction succeeds with probability 1/n. Records older than the
mapping's maximum age when their batch is read are dropped (lost).
"""

import math

import numpy as np

from bench.common import write_results

HOURS = 4
SHARD_WRITES_PER_S = 1000
INVOKE_S, GET_RECORDS_S, MERGE_S = 0.020, 0.010, 0.000005
TRANSACTION_S = (0.010, 0.025)
DESIGNS = {
    "per_record": {"batch": 100, "window_s": 0.0, "max_age_s": 3600},
    "batch_merge_high_water_mark": {"batch": 1000, "window_s": 1.0, "max_age_s": 21600},
}


def simulate_shard(
    rate: float, shards: int, design: str, rng: np.random.Generator
) -> dict[str, float]:
    """One shard's worker over ``HOURS``: records counted, lost, and the final lag."""
    spec = DESIGNS[design]
    horizon = HOURS * 3600.0
    arrivals = rate / shards  # records/s reaching this shard
    clock, next_record = 0.0, 0  # the worker's time; index of the oldest unread record
    counted = lost = 0
    counted_last_hour = 0
    while clock < horizon:
        available = int(clock * arrivals) - next_record
        if available <= 0:  # idle until the next record is written
            clock = (next_record + 1) / arrivals
            continue
        if available < spec["batch"] and spec["window_s"]:
            # Lambda waits up to the batching window for a full batch
            clock += spec["window_s"]
            available = int(clock * arrivals) - next_record
        size = min(available, spec["batch"])
        first_written = next_record / arrivals
        age = clock - first_written
        clock += INVOKE_S + GET_RECORDS_S
        if age > spec["max_age_s"]:  # expired before it was read: dropped
            lost += size
            next_record += size
            continue
        if design == "per_record":
            done = 0
            while done < size:
                clock += rng.uniform(*TRANSACTION_S)
                if rng.random() < 1 / shards:
                    done += 1
                else:  # cancelled by a concurrent transaction: the batch is retried from it
                    clock += INVOKE_S + GET_RECORDS_S
        else:
            transactions = math.ceil(size / spec["batch"])
            clock += size * MERGE_S + rng.uniform(*TRANSACTION_S, size=transactions).sum()
            done = size
        counted += done
        if clock > horizon - 3600:
            counted_last_hour += done
        next_record += done
    backlog = int(horizon * arrivals) - next_record
    lag_s = max(0.0, backlog / arrivals) if arrivals else 0.0
    return {
        "counted": counted,
        "lost": lost,
        "counted_last_hour": counted_last_hour,
        "final_lag_s": lag_s,
    }


def simulate(rate: float, design: str, seed: int = 7) -> dict[str, float]:
    shards = max(1, math.ceil(rate / SHARD_WRITES_PER_S))
    rng = np.random.default_rng(seed)
    runs = [simulate_shard(rate, shards, design, rng) for _ in range(shards)]
    written = rate * HOURS * 3600
    return {
        "shards": shards,
        "written": int(written),
        "counted_per_s_last_hour": round(sum(r["counted_last_hour"] for r in runs) / 3600, 1),
        "counted_share": round(sum(r["counted"] for r in runs) / written, 4),
        "lost": int(sum(r["lost"] for r in runs)),
        "iterator_age_at_end_s": round(max(r["final_lag_s"] for r in runs), 1),
    }


def main() -> None:
    results = {
        "model": __doc__.split("Model: ", 1)[1].strip().replace("\n", " "),
        "hours_simulated": HOURS,
        "rates": {
            str(rate): {design: simulate(rate, design) for design in DESIGNS}
            for rate in (100, 1000, 10_000)
        },
        "target": "the new design counts >= 9,800/s at 10,000/s with nothing lost",
    }
    write_results("stream_sim", results)


if __name__ == "__main__":
    main()
