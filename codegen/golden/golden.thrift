/**
 * The golden IDL: every fulcrum annotation, and every shape fulcrum-gen handles (extends
 * across files, included types, namespaces, typedefs, enums, nested containers, oneway,
 * throws, doc comments). Its output, golden_fulcrum.{h,cpp}, is reviewed: see docs/codegen.md.
 */
include "golden_base.thrift"

namespace cpp golden

typedef i64 Cents
typedef map<string, list<golden_base.Account>> AccountsByRegion

struct Request {
  1: golden_base.Account account
  2: string note
}

exception NotFound {
  1: string account_id
}

exception Denied {
  1: i32 code
}

/** A ledger, replicated master-slave. */
service Ledger extends golden_base.Pingable {
  /** Reads a balance; a slave may answer. */
  Cents balance(1: string account_id) throws (1: NotFound not_found) (
      fulcrum.read = "true", fulcrum.idempotent = "true", fulcrum.hash_key = "account_id",
      fulcrum.timeout_ms = "250")

  /** Moves money. Not idempotent: never retried once sent. */
  void transfer(1: Request req, 2: Cents amount) throws (1: NotFound not_found, 2: Denied denied) (
      fulcrum.hash_key = "req.account.id", fulcrum.timeout_ms = "1000")

  AccountsByRegion accounts(1: set<golden_base.Tier> tiers,
                            2: map<i32, map<string, list<i64>>> nested) (
      fulcrum.idempotent = "1", other.annotation = "ignored")

  golden_base.Tier tierOf(1: i64 shard) (fulcrum.hash_key = "shard")

  oneway void audit(1: string line, 2: golden_base.Tier tier) (fulcrum.hash_key = "tier")

  /** Arguments named like the generated code's own locals. */
  list<string> echo(1: string client, 2: string options, 3: string phase)
} (fulcrum.mode = "master_slave", fulcrum.balancer = "consistent_hash")

service Plain {
  void nothing()
  /** Hedged: unanswered after 20 ms, the same request goes to another endpoint too. */
  i64 lookup(1: i64 key) (fulcrum.idempotent = "true", fulcrum.hedge_ms = "20")
}
