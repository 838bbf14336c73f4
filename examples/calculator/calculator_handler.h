// CalculatorHandler: the calculator service's logic, behind the stock CalculatorIf.
//
//   auto server = calc::fulcrum_gen::CalculatorServer::Serve(
//       std::make_shared<calc::CalculatorHandler>("replica-1"), {.port = 0});
//
// Thread-safe: stateless apart from an immutable id.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "Calculator.h"

namespace calc {

class CalculatorHandler : public CalculatorIf {
 public:
  explicit CalculatorHandler(std::string id) : id_(std::move(id)) {}

  int64_t add(int64_t a, int64_t b) override { return a + b; }
  int64_t divide(int64_t a, int64_t b) override;
  int64_t sum(const std::string& key, const std::vector<int64_t>& values) override;
  void whoami(std::string& _return) override { _return = id_; }
  void note(const std::string& message) override;

 private:
  const std::string id_;
};

}  // namespace calc
