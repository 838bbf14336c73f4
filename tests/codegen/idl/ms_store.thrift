// A master-slave service for the generated write gate's end-to-end test
// (tests/codegen/master_slave_e2e_test.cc).
namespace cpp mstest

service Store {
  string get(1: string key) (fulcrum.read = "true", fulcrum.idempotent = "true")
  i64 put(1: string key, 2: string value)
  oneway void log(1: string line)
  // Writes this instance has run.
  i64 writes() (fulcrum.read = "true")
} (fulcrum.mode = "master_slave", fulcrum.balancer = "round_robin")
