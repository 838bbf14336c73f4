/**
 * A replicated key-value store: one master per group takes writes and replicates them to its
 * slaves before acknowledging them; slaves pull the master's log (fetch). See README.md.
 */
namespace cpp kvstore.rpc

enum ErrorCode {
  /** Fewer in-sync slaves than --min_insync_replicas: the write was refused, not applied. */
  NOT_ENOUGH_REPLICAS = 1,
  /** The write was logged but not acknowledged in time by enough slaves: outcome unknown. */
  REPLICATION_TIMEOUT = 2,
  /** This instance is not (or no longer) the master; `master` names the one it knows. */
  NOT_MASTER = 3,
  /** A fetch named an epoch older than the master's: the caller must learn the new master. */
  STALE_EPOCH = 4,
  /** A bad argument (empty key, negative position...). */
  INVALID_ARGUMENT = 5,
}

exception KvError {
  1: ErrorCode code,
  2: string message,
  3: string master,
}

struct GetResult {
  1: bool found,
  2: string value,
}

enum OpType {
  PUT = 1,
  REMOVE = 2,
}

/** One log entry. Positions start at 1 and have no gaps. */
struct LogEntry {
  1: i64 position,
  2: i64 epoch,
  3: OpType op,
  4: string key,
  5: string value,
}

/** The master's whole state as of `position` (whose entry has epoch `epoch`). */
struct Snapshot {
  1: i64 position,
  2: i64 epoch,
  3: map<string, string> data,
}

struct FetchResult {
  /** The master's epoch. */
  1: i64 epoch,
  /** Entries from the fetched position on (after the snapshot when there is one). */
  2: list<LogEntry> entries,
  /** Set when the caller's log does not match the master's: replace everything with it. */
  3: optional Snapshot snapshot,
}

struct ReplicaStatus {
  1: string role,
  2: i64 epoch,
  3: i64 log_end,
  4: i64 last_epoch,
  5: i64 commit_position,
  6: i32 insync_slaves,
  7: i64 keys,
}

/**
 * Writes may wait up to --insync_window_ms (a new master's slaves connecting) plus
 * --replication_timeout_ms (their acknowledgements): the write timeouts leave room for both.
 */
service KvStore {
  /** The value of `key`. On the master, waits until that value is acknowledged. */
  GetResult get(1: string key) throws (1: KvError error) (
      fulcrum.read = "true", fulcrum.idempotent = "true", fulcrum.timeout_ms = "2000")

  void put(1: string key, 2: string value) throws (1: KvError error) (
      fulcrum.idempotent = "true", fulcrum.timeout_ms = "3000")

  /** Whether the key existed. */
  bool remove(1: string key) throws (1: KvError error) (
      fulcrum.idempotent = "true", fulcrum.timeout_ms = "3000")

  /** Sets `key` to `value` if its value is `expected` (`expect_absent`: if it has none). */
  bool compare_and_set(1: string key, 2: string expected, 3: bool expect_absent, 4: string value)
      throws (1: KvError error) (fulcrum.timeout_ms = "3000")

  /**
   * Replication, called by slaves on the master: entries after `from_position - 1`, whose
   * entry the caller has with epoch `prev_entry_epoch`. Waits up to max_wait_ms for new
   * entries when there are none. A read so that a master told to stop writes still serves
   * it; the handler checks it is the master of `epoch`.
   */
  FetchResult fetch(1: string replica, 2: i64 epoch, 3: i64 from_position,
                    4: i64 prev_entry_epoch, 5: i32 max_wait_ms) throws (1: KvError error) (
      fulcrum.read = "true", fulcrum.idempotent = "true", fulcrum.timeout_ms = "5000")

  /** What this instance knows (for tools and tests). */
  ReplicaStatus status() (fulcrum.read = "true", fulcrum.idempotent = "true")
} (fulcrum.mode = "master_slave")
