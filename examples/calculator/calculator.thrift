/**
 * A stateless calculator: every replica answers every call alike, so clients balance across
 * all of them. Built with fulcrum_thrift_generate (see CMakeLists.txt).
 */
namespace cpp calc

exception DivideByZero {
  1: string message
}

service Calculator {
  /** Returns a + b. */
  i64 add(1: i64 a, 2: i64 b) (fulcrum.idempotent = "true", fulcrum.timeout_ms = "200")

  /** Returns a / b, rounded towards zero. */
  i64 divide(1: i64 a, 2: i64 b) throws (1: DivideByZero error) (fulcrum.idempotent = "true")

  /** Returns the sum of `values`. Calls with the same `key` go to the same replica. */
  i64 sum(1: string key, 2: list<i64> values) (fulcrum.hash_key = "key")

  /** Returns the --id of the replica that answered. */
  string whoami() (fulcrum.idempotent = "true")

  /** Logs a line on the replica; no reply. */
  oneway void note(1: string message)
} (fulcrum.balancer = "p2c_least_loaded")
