// Factories of the built-in balancers, one per file in this folder; balancer_table.cc
// registers them under their names. Thread-safe (factories have no shared state).
#pragma once

#include <memory>

#include "fulcrum/balancer.h"

namespace fulcrum::balancers {

std::unique_ptr<Balancer> NewRandomBalancer(const BalancerContext& ctx);
std::unique_ptr<Balancer> NewWeightedRandomBalancer(const BalancerContext& ctx);
std::unique_ptr<Balancer> NewRoundRobinBalancer(const BalancerContext& ctx);
std::unique_ptr<Balancer> NewWeightedRoundRobinBalancer(const BalancerContext& ctx);
std::unique_ptr<Balancer> NewLeastResponseTimeBalancer(const BalancerContext& ctx);
std::unique_ptr<Balancer> NewP2CLeastLoadedBalancer(const BalancerContext& ctx);
std::unique_ptr<Balancer> NewPeakEwmaBalancer(const BalancerContext& ctx);
std::unique_ptr<Balancer> NewConsistentHashBalancer(const BalancerContext& ctx);

}  // namespace fulcrum::balancers
