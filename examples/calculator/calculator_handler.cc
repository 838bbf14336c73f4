#include "calculator_handler.h"

#include <glog/logging.h>

namespace calc {

int64_t CalculatorHandler::divide(int64_t a, int64_t b) {
  if (b == 0) {
    DivideByZero error;
    error.message = "divide(" + std::to_string(a) + ", 0)";
    throw error;
  }
  return a / b;
}

int64_t CalculatorHandler::sum(const std::string& key, const std::vector<int64_t>& values) {
  int64_t total = 0;
  for (int64_t v : values) total += v;
  return total;
}

void CalculatorHandler::note(const std::string& message) { LOG(INFO) << id_ << ": " << message; }

}  // namespace calc
