namespace cpp greeter
service Greeter {
  string hello(1: string name) (fulcrum.idempotent = "true", fulcrum.hash_key = "name")
} (fulcrum.balancer = "round_robin")
