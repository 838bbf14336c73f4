// Keeps fulcrum_test_support non-empty until its real sources land.
namespace fulcrum::testing {
void TestSupportPlaceholder() {}
}  // namespace fulcrum::testing
