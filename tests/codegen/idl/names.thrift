// Names chosen to collide with what the stock compiler or fulcrum-gen write: the generated
// code must still compile and link.
namespace cpp names

struct Client { 1: string client }

// Thrift writes CalcBalancedClient for this service; fulcrum-gen writes one for Calc.
service CalcBalanced {
  void Serve()
}

service CalcServer {
  void Start()
}

service Calc {
  void channel(1: i32 channel_)
  void channel_()
  string options(1: string options, 2: string client, 3: string phase, 4: string routed)
      (fulcrum.hash_key = "routed")
  Client Create(1: Client std, 2: Client fulcrum) (fulcrum.hash_key = "std.client")
  i64 kServiceName(1: i64 handler, 2: i64 target)
  void CalcChannelOptions()
  oneway void BalancedClientBase(1: string _return)
}
