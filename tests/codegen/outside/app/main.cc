#include <cstdio>
#include <cstring>

#include "greeter_fulcrum.h"

int main() {
  fulcrum::ChannelOptions options = greeter::fulcrum_gen::GreeterChannelOptions();
  static_assert(greeter::fulcrum_gen::GreeterMethods::hello.idempotent);
  if (options.service_name != "Greeter" || options.balancer != "round_robin") return 1;
  std::printf("outside OK\n");
  return 0;
}
