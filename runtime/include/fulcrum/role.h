// RoleState: what a master-slave server knows of its role, and the write gate built on it.
// The registry decides roles; a server learns them from its heartbeat replies
// (ServerRegistration feeds Apply), and the generated server glue asks BeginWrite() before
// every function not annotated fulcrum.read, refusing the call with a NotMaster redirect when
// it says no.
//
//   auto role = std::make_shared<fulcrum::RoleState>();
//   role->OnChange([](const fulcrum::RoleInfo& r) { LOG(INFO) << "epoch " << r.epoch; });
//   ...
//   if (role->BeginWrite()) { /* apply the write */ role->EndWrite(); }
//
// The lease: a master may admit writes only until sent_at + master_lease of the last
// heartbeat the registry answered as master, less `write_margin` (time a write admitted just
// before the end may still need to finish). The registry promotes someone else only after a
// longer delay, so a master that cannot renew (registry unreachable, process stopped) stops
// writing before another can start. A handler that acknowledges a write after slow work
// (replication) checks LeaseValid() again before acknowledging.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fulcrum/clock.h"
#include "fulcrum/endpoint.h"
#include "fulcrum/registrar.h"

namespace fulcrum {

struct RoleInfo {
  InstanceRole role = InstanceRole::kNone;
  int64_t epoch = 0;
  std::string master_address;  // "host:port", empty when unknown
  friend bool operator==(const RoleInfo&, const RoleInfo&) = default;
};

class RoleState {
 public:
  explicit RoleState(const Clock& clock = Clock::Real(),
                     Duration write_margin = std::chrono::milliseconds(100));

  // A heartbeat reply. Ignored if it carries an older epoch than one already seen (replies
  // cannot overtake each other on one connection, but a reconnect could).
  void Apply(const RegistrarDirectives& d);
  // Stop admitting writes for good (a draining master; the server is going away).
  void StopWrites();

  RoleInfo info() const;
  bool is_master() const;  // the registry's last word was "master" (lease not considered)
  int64_t epoch() const;
  // Master, not asked to stop writes, and the lease runs at least write_margin longer.
  bool Writable() const;
  // Master and the lease has not run out (for a final check before acknowledging).
  bool LeaseValid() const;
  // How long the lease still runs (zero when there is none or it ran out); for metrics.
  Duration LeaseRemaining() const;

  // Write admission for the generated glue: true means admitted, and the caller must call
  // EndWrite() when the write is done (WriteGuard does).
  bool BeginWrite();
  void EndWrite();
  int64_t writes_in_flight() const { return writes_in_flight_.load(); }
  // For the heartbeat: stop_writes was asked and no admitted write is still running.
  bool writes_quiesced() const;
  // Writes the gate refused with a NotMaster redirect (write_gate.h counts them); for metrics.
  void OnWriteRefused() { writes_refused_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t writes_refused() const { return writes_refused_.load(std::memory_order_relaxed); }

  // The application's replication position, reported with every heartbeat.
  void set_replication_position(int64_t position) { position_.store(position); }
  int64_t replication_position() const { return position_.load(); }
  // Master only: the position up to which writes were acknowledged. The registry never
  // promotes a slave below the last one reported (it would lose those writes).
  void set_commit_position(int64_t position) { commit_position_.store(position); }
  int64_t commit_position() const { return commit_position_.load(); }

  // Called (from the heartbeat thread, never two at once) after role, epoch or master
  // changed. Register listeners before the server starts.
  void OnChange(std::function<void(const RoleInfo&)> listener);

 private:
  const Clock& clock_;
  const Duration write_margin_;
  std::atomic<int64_t> writes_in_flight_{0};
  std::atomic<int64_t> position_{0};
  std::atomic<int64_t> commit_position_{0};
  std::atomic<uint64_t> writes_refused_{0};
  // The write path reads these two without the mutex.
  std::atomic<int64_t> lease_end_ns_{0};  // 0: no lease
  std::atomic<bool> stop_writes_{false};
  std::atomic<bool> stopped_for_good_{false};

  mutable std::mutex mu_;
  RoleInfo info_;
  std::vector<std::function<void(const RoleInfo&)>> listeners_;
};

// Pairs BeginWrite with EndWrite.
class WriteGuard {
 public:
  explicit WriteGuard(RoleState& role) : role_(role), admitted_(role.BeginWrite()) {}
  ~WriteGuard() {
    if (admitted_) role_.EndWrite();
  }
  WriteGuard(const WriteGuard&) = delete;
  WriteGuard& operator=(const WriteGuard&) = delete;
  bool admitted() const { return admitted_; }

 private:
  RoleState& role_;
  bool admitted_;
};

// The refusal a non-master sends instead of running a write: a TApplicationException whose
// type is kNotMasterExceptionType and whose message names the master the refusing instance
// knows (possibly none) and its epoch. The call was never executed, so clients retry it on
// the master, whatever the function.
// 15: unused by Thrift (its types are 0..10) yet inside the C++ enum's value range (0..15), so
// Thrift's own code may hold it in a TApplicationExceptionType without undefined behaviour
// (UBSan's enum check flagged the first choice, 0x464D). The message prefix is checked too.
inline constexpr int kNotMasterExceptionType = 15;

struct NotMaster {
  std::string master_address;  // empty: the refusing instance knows no writable master
  int64_t epoch = 0;
};

std::string FormatNotMaster(const NotMaster& redirect);
// nullopt unless `message` is a FormatNotMaster message.
std::optional<NotMaster> ParseNotMaster(std::string_view message);

}  // namespace fulcrum
