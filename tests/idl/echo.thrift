// The service the runtime's tests and benchmarks call. Plain Thrift: the runtime tests use the
// stock generated client, so they need no code generator.
namespace cpp fulcrum.test

exception EchoError {
  1: string message
}

service Echo {
  // Returns its argument. The benchmark call.
  string echo(1: string message)
  // Sleeps for `millis`, then returns the id of the server that answered.
  string slow(1: i32 millis)
  // Throws the declared exception (an application error, not an endpoint failure).
  void fail(1: string message) throws (1: EchoError err)
  // Returns the id of the server that answered.
  string whoami()
  // Adds to a per-server counter and returns it; tests use it to count executions.
  i64 increment(1: i64 delta)
  // Returns a string of `size` bytes (large-payload tests).
  binary blob(1: i32 size)
  // Accepts a large payload and returns its length.
  i64 upload(1: binary data)
  oneway void notify(1: string message)
}
