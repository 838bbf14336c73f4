// Included by golden.thrift: types and a base service from another file and namespace.
namespace cpp golden.base

typedef string AccountId

enum Tier {
  FREE = 1,
  PAID = 2
}

struct Account {
  1: AccountId id
  2: i64 shard
  3: Tier tier
}

/** Health checks that every service extending Pingable inherits. */
service Pingable {
  /** Answers with `payload`. */
  binary ping(1: binary payload) (fulcrum.idempotent = "true", fulcrum.read = "true")
}
