/**
 * A small stateless service for the install test: every replica answers alike.
 */
namespace cpp inventory

exception UnknownItem {
  1: string item
}

service Inventory {
  /** How many of `item` are in stock: its length times `factor`; "" is unknown. */
  i64 count(1: string item, 2: i64 factor) throws (1: UnknownItem error)
      (fulcrum.idempotent = "true", fulcrum.timeout_ms = "2000")

  /** The --id of the replica that answered. */
  string whoami() (fulcrum.idempotent = "true")
} (fulcrum.balancer = "round_robin")
